package archive

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"hash/crc32"
	"runtime"
	"sort"
	"time"

	"github.com/klauspost/compress/zstd"

	"github.com/amber-kafka/amber/protocol"
)

// An archive in a store is append-only objects under a format version:
//
//	v1/seg/<writer>/<seq>.seg   a segment: blocks of batches and events
//	v1/idx/<writer>/<seq>.idx   its index, written after the segment
//
// <writer> is the proxy's writer id (16 hex), <seq> that writer's upload
// number (16 hex, zero-padded, so keys sort in upload order). A segment
// without its index is not part of the archive yet (an interrupted
// upload); its index, once present, makes it so. Every constant here is
// part of the format.
//
//	segment object
//	+----------+---------+---------+-----+---------+
//	| AMBRSEG1 | block 0 | block 1 | ... | block n |
//	+----------+---------+---------+-----+---------+
//	   8 bytes
//
//	block (stored bytes) = encrypt?( compress?( payload ) )
//	  compress: zstd, unless it saves under 10% (batches the producer
//	            already compressed); the index records which
//	  encrypt:  AES-256-GCM: nonce(12) | ciphertext | tag(16), with
//	            additional data "<segment key>#<block number>"
//
//	batches payload: entries of one partition in offset order (a
//	  partition may take several consecutive blocks of a segment)
//	  entry = uvarint length | base offset int64 BE | ack µs int64 BE |
//	          append time ms int64 BE | client id (uvarint len, bytes) |
//	          record batch (as the client sent it)
//	events payload:
//	  entry = uvarint length | sequence uint64 BE | journal event value
//
//	index object
//	+----------+-------+--------+--------+------------------------+--------+
//	| AMBRIDX1 | flags | key id | key id | body: zstd, encrypted  | CRC32C |
//	|          | u8    | len u8 |        | if flags&1             | BE u32 |
//	+----------+-------+--------+--------+------------------------+--------+
//	  CRC32C covers every byte before it.
//
//	index body (integers uvarint unless said; strings uvarint len + bytes)
//	  format (1) | writer | seq | created µs (varint) | segment key |
//	  segment size | segment SHA-256 (32 bytes) | block count | blocks
//	block: kind u8 (1 batches, 2 events) | offset | stored length |
//	  raw length | codec u8 (0 none, 1 zstd) | CRC32C of stored bytes u32 BE
//	  batches: topic | partition (varint) | batch count | per batch:
//	    base offset (varint: first absolute, then delta from the previous
//	    batch's end) | span (LastOffsetDelta+1) | records (NumRecords) |
//	    ack µs (varint: first absolute, then delta) | max timestamp ms
//	    (varint, delta from ack ms) | entry length in the payload
//	  events: count | first sequence | first µs (varint) | last µs (varint)
//	  losses (kind 3, index format 2 only): topic | partition (varint) |
//	    count | per loss: start (varint) | end (varint) | reason
//	    A losses block has no bytes in the segment (offset: the segment's
//	    end, lengths 0, codec 0, CRC 0): it summarises the segment's
//	    known_loss events so that readers see them without reading data.
//
// Index format 2 is format 1 plus losses blocks. A writer writes format 2
// only for an index that has one, so an archive without known losses stays
// readable by an amber that knows only format 1, and one with them is
// refused by it with "upgrade amber" rather than misread.
const (
	indexFormat   = 1
	indexFormat2  = 2
	segmentMagic  = "AMBRSEG1"
	indexMagic    = "AMBRIDX1"
	blockBatches  = 1
	blockEvents   = 2
	blockLosses   = 3
	codecNone     = 0
	codecZstd     = 1
	flagEncrypted = 1
	// compressMinSaving: zstd is kept only if it saves at least this share.
	compressMinSaving = 0.10
)

// ErrCorrupt is returned for an archive object that fails its checksum or
// does not parse.
var ErrCorrupt = errors.New("corrupt archive object")

// BatchMeta is what an index says of one batch.
type BatchMeta struct {
	BaseOffset   int64
	Span         int64 // offsets the batch covers (LastOffsetDelta+1)
	Records      int64 // NumRecords
	AckTime      time.Time
	MaxTimestamp int64 // ms, the batch's MaxTimestamp
	entryLen     int   // bytes of its entry in the block payload
}

// IndexBlock is one block of a segment as its index describes it.
type IndexBlock struct {
	Kind      int
	Offset    int64 // in the segment object
	Length    int64 // stored bytes
	RawLength int64
	Codec     int
	CRC       uint32

	Topic     string
	Partition int32
	Batches   []BatchMeta

	Events    int64
	FirstSeq  uint64
	FirstTime time.Time
	LastTime  time.Time

	// Losses are a losses block's known losses (Topic and Partition
	// name the partition).
	Losses []LossRange
}

// Index is a segment's index.
type Index struct {
	Key        string // the index object's key
	Writer     string
	Seq        uint64
	Created    time.Time
	Segment    string
	SegSize    int64
	SegSHA256  [32]byte
	KeyID      string
	Blocks     []IndexBlock
	ObjectSize int64 // of the index object
}

// SegmentKey and IndexKey name a writer's seq-th upload.
func SegmentKey(writer string, seq uint64) string {
	return fmt.Sprintf("v1/seg/%s/%016x.seg", writer, seq)
}
func IndexKey(writer string, seq uint64) string {
	return fmt.Sprintf("v1/idx/%s/%016x.idx", writer, seq)
}

var (
	// zenc serves every compression: a segment builder's blocks, on up to
	// GOMAXPROCS goroutines at once (segment_parallel.go), and indexes.
	zenc, _ = zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedDefault), zstd.WithEncoderConcurrency(runtime.GOMAXPROCS(0)))
	zdec, _ = zstd.NewReader(nil, zstd.WithDecoderConcurrency(0), zstd.WithDecoderMaxMemory(1<<30))
	crcTab  = crc32.MakeTable(crc32.Castagnoli)
)

// blockTarget is the raw size at which the builder closes a batches block
// and starts another for the same partition (a batch larger than it gets
// a block of its own); setBlockTarget lowers it for small segments. Not
// part of the format: readers take blocks of any size, and a partition's
// batches in several consecutive blocks of one segment. Bounded blocks
// keep the segment's size (which counts the open block uncompressed)
// close to what is stored, so that segments of compressible data are the
// size asked for, and make a ranged read of a partition fetch at most
// this much more than it needs.
const (
	blockTarget    = 4 << 20
	minBlockTarget = 64 << 10
)

// segmentBuilder accumulates one segment and its index. The open block's
// payload is built in place at the end of seg and compressed and sealed
// there when the block closes.
type segmentBuilder struct {
	writer string
	seq    uint64
	key    *Key
	seg    []byte
	sha    hash.Hash // of seg up to the open block
	idx    Index
	// open is where the open block's payload starts in seg; cur its
	// index entry (nil: no block open).
	open int
	cur  *IndexBlock
	// target is the raw size at which a batches block closes.
	target int
	// scratch holds a block's compressed or plaintext bytes while it is
	// written back into seg.
	scratch []byte
	// last is the partition of the last closed batches block, and
	// lastRaw whether zstd was not worth it for it: see closeBlock.
	last    tp
	lastRaw bool
	// losses are the known_loss events added, summarised in the index.
	losses map[tp][]LossRange
	// parallel, out, lastSent, outRatio: compressing blocks on several
	// goroutines (segment_parallel.go).
	parallel int
	out      []*blockJob
	lastSent tp
	outRatio float64
}

// useBuffers has the builder write the segment into seg and use scratch
// for compressed and encrypted blocks (both empty; seg with the capacity
// needed), so that a builder does not grow and zero fresh buffers of tens
// of megabytes. The buffers may be reused once the segment returned by
// finish has been uploaded. Call it before adding anything.
func (b *segmentBuilder) useBuffers(seg, scratch []byte) {
	b.seg = append(seg, b.seg...)
	b.scratch = scratch
}

func newSegmentBuilder(writer string, seq uint64, key *Key) *segmentBuilder {
	b := &segmentBuilder{writer: writer, seq: seq, key: key, sha: sha256.New(), target: blockTarget}
	b.seg = append(b.seg, segmentMagic...)
	b.sha.Write(b.seg)
	b.idx = Index{Key: IndexKey(writer, seq), Writer: writer, Seq: seq, Created: time.Now().UTC(), Segment: SegmentKey(writer, seq), KeyID: key.ID()}
	return b
}

// setBlockTarget fits the block size to segments of about segBytes: an
// eighth of it, between minBlockTarget and blockTarget.
func (b *segmentBuilder) setBlockTarget(segBytes int) {
	b.target = min(max(segBytes/8, minBlockTarget), blockTarget)
}

// addBatch appends a journaled batch, starting a new block when the
// partition changes or the block would grow past its target size.
func (b *segmentBuilder) addBatch(jb *Batch) error {
	h, err := protocol.ParseBatchHeader(jb.Data)
	if err != nil {
		return fmt.Errorf("journaled batch %s/%d@%d: %w", jb.Topic, jb.Partition, jb.BaseOffset, err)
	}
	hdr := 24 + binary.MaxVarintLen64 + len(jb.ClientID)
	if b.cur == nil || b.cur.Kind != blockBatches || b.cur.Topic != jb.Topic || b.cur.Partition != jb.Partition ||
		len(b.seg)-b.open+hdr+len(jb.Data) > b.target {
		b.closeBlock()
		b.cur = &IndexBlock{Kind: blockBatches, Topic: jb.Topic, Partition: jb.Partition}
		b.open = len(b.seg)
	}
	n := len(b.seg)
	b.seg = binary.AppendUvarint(b.seg, uint64(24+uvarintLen(len(jb.ClientID))+len(jb.ClientID)+len(jb.Data)))
	b.seg = binary.BigEndian.AppendUint64(b.seg, uint64(jb.BaseOffset))
	b.seg = binary.BigEndian.AppendUint64(b.seg, uint64(jb.AckTime.UnixMicro()))
	b.seg = binary.BigEndian.AppendUint64(b.seg, uint64(jb.LogAppendTime))
	b.seg = binary.AppendUvarint(b.seg, uint64(len(jb.ClientID)))
	b.seg = append(b.seg, jb.ClientID...)
	b.seg = append(b.seg, jb.Data...)
	b.cur.Batches = append(b.cur.Batches, BatchMeta{
		BaseOffset: jb.BaseOffset, Span: h.Records(), Records: int64(h.NumRecords),
		AckTime: jb.AckTime, MaxTimestamp: h.MaxTimestamp, entryLen: len(b.seg) - n,
	})
	return nil
}

func uvarintLen(n int) int {
	l := 1
	for ; n >= 0x80; n >>= 7 {
		l++
	}
	return l
}

// addEvent appends a journaled event to the segment's events block.
func (b *segmentBuilder) addEvent(ev *Event) {
	if b.cur == nil || b.cur.Kind != blockEvents {
		b.closeBlock()
		b.cur = &IndexBlock{Kind: blockEvents, FirstSeq: ev.Seq, FirstTime: ev.Time}
		b.open = len(b.seg)
	}
	v := binary.BigEndian.AppendUint64(nil, ev.Seq)
	v = appendEventValue(v, ev)
	b.seg = binary.AppendUvarint(b.seg, uint64(len(v)))
	b.seg = append(b.seg, v...)
	b.cur.Events++
	b.cur.LastTime = ev.Time
	if k, l, ok := lossFromEvent(ev); ok {
		if b.losses == nil {
			b.losses = map[tp][]LossRange{}
		}
		b.losses[k] = append(b.losses[k], l)
	}
}

// closeBlock turns the open block's payload, at the end of seg, into its
// stored bytes: compressed if that saves compressMinSaving, sealed if
// the segment is encrypted.
//
// Whether to try zstd: a block of under a sample's worth is always tried.
// A larger one is tried at once if the previous block of its partition
// compressed (a partition's data changes character rarely); otherwise
// zstd is first run on samples of it (three for a partition's first
// block, one after a block that did not compress), because compressing
// megabytes of batches a producer already compressed, or of random bytes,
// only to throw the result away costs more CPU than the rest of an upload.
// A wrong "no" costs only storage.
func (b *segmentBuilder) closeBlock() {
	if b.cur == nil {
		return
	}
	blk := *b.cur
	payload := b.seg[b.open:]
	k := tp{blk.Topic, blk.Partition}
	try := b.tryZstd(blk.Kind, k, payload)
	if blk.Kind == blockBatches {
		b.lastSent = k
	}
	if b.parallel > 1 && (try || len(b.out) > 0) {
		b.dispatchBlock(try) // in order after the blocks out, even if not compressed
		b.open = len(b.seg)
		return
	}
	blk.RawLength = int64(len(payload))
	blk.Codec = codecNone
	stored := payload
	if try {
		b.scratch = zenc.EncodeAll(payload, b.scratch[:0])
		if float64(len(b.scratch)) < float64(len(payload))*(1-compressMinSaving) {
			stored, blk.Codec = b.scratch, codecZstd
		}
	}
	if blk.Kind == blockBatches {
		b.last, b.lastRaw = k, blk.Codec == codecNone
	}
	switch {
	case b.key != nil:
		if blk.Codec == codecNone { // seal reads the plaintext from apart
			b.scratch = append(b.scratch[:0], payload...)
			stored = b.scratch
		}
		b.seg = b.key.seal(b.seg[:b.open], stored, blockAAD(b.idx.Segment, len(b.idx.Blocks)))
	case blk.Codec == codecZstd:
		b.seg = append(b.seg[:b.open], stored...)
	}
	stored = b.seg[b.open:]
	blk.Offset = int64(b.open)
	blk.Length = int64(len(stored))
	blk.CRC = crc32.Checksum(stored, crcTab)
	b.sha.Write(stored)
	b.idx.Blocks = append(b.idx.Blocks, blk)
	b.open = len(b.seg)
	b.cur = nil
}

// tryZstd decides whether to compress a block (see closeBlock). With
// blocks out on other goroutines, whether the last block of the partition
// compressed is not known yet: a sample decides.
func (b *segmentBuilder) tryZstd(kind int, k tp, payload []byte) bool {
	if len(payload) < compressSample {
		return true
	}
	if len(b.out) == 0 {
		same := kind == blockBatches && k == b.last
		return (same && !b.lastRaw) || compressible(payload, !same)
	}
	return compressible(payload, !(kind == blockBatches && k == b.lastSent))
}

// compressSample is the size of one zstd sample taken by compressible.
const compressSample = 64 << 10

// compressible guesses, from samples of a payload of at least
// compressSample, whether zstd can save compressMinSaving of it: three
// samples (start, middle, end) if thorough, else one from the middle.
func compressible(p []byte, thorough bool) bool {
	at := []int{len(p)/2 - compressSample/2}
	if thorough && len(p) >= 3*compressSample {
		at = []int{0, at[0], len(p) - compressSample}
	}
	var in, out int
	var z []byte
	for _, a := range at {
		z = zenc.EncodeAll(p[a:a+compressSample], z[:0])
		in, out = in+compressSample, out+len(z)
	}
	return float64(out) < float64(in)*(1-compressMinSaving)
}

func blockAAD(segment string, n int) []byte { return fmt.Appendf(nil, "%s#%d", segment, n) }

// size is the segment's size so far, with the open block (at most about
// blockTarget) uncompressed.
func (b *segmentBuilder) size() int { return len(b.seg) + b.outBytes() }

// finish closes the last block and returns the segment and index objects.
func (b *segmentBuilder) finish() (seg, idx []byte) {
	b.closeBlock()
	for len(b.out) > 0 {
		b.drainOne()
	}
	keys := make([]tp, 0, len(b.losses))
	for k := range b.losses {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		if keys[i].topic != keys[j].topic {
			return keys[i].topic < keys[j].topic
		}
		return keys[i].partition < keys[j].partition
	})
	for _, k := range keys {
		b.idx.Blocks = append(b.idx.Blocks, IndexBlock{Kind: blockLosses, Offset: int64(len(b.seg)),
			Topic: k.topic, Partition: k.partition, Losses: b.losses[k]})
	}
	b.idx.SegSize = int64(len(b.seg))
	copy(b.idx.SegSHA256[:], b.sha.Sum(nil))
	return b.seg, encodeIndex(&b.idx, b.key)
}

func appendString(dst []byte, s string) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(s)))
	return append(dst, s...)
}

func encodeIndex(ix *Index, key *Key) []byte {
	format := uint64(indexFormat)
	for i := range ix.Blocks {
		if ix.Blocks[i].Kind == blockLosses {
			format = indexFormat2
		}
	}
	var body []byte
	body = binary.AppendUvarint(body, format)
	body = appendString(body, ix.Writer)
	body = binary.AppendUvarint(body, ix.Seq)
	body = binary.AppendVarint(body, ix.Created.UnixMicro())
	body = appendString(body, ix.Segment)
	body = binary.AppendUvarint(body, uint64(ix.SegSize))
	body = append(body, ix.SegSHA256[:]...)
	body = binary.AppendUvarint(body, uint64(len(ix.Blocks)))
	for i := range ix.Blocks {
		blk := &ix.Blocks[i]
		body = append(body, byte(blk.Kind))
		body = binary.AppendUvarint(body, uint64(blk.Offset))
		body = binary.AppendUvarint(body, uint64(blk.Length))
		body = binary.AppendUvarint(body, uint64(blk.RawLength))
		body = append(body, byte(blk.Codec))
		body = binary.BigEndian.AppendUint32(body, blk.CRC)
		switch blk.Kind {
		case blockBatches:
			body = appendString(body, blk.Topic)
			body = binary.AppendVarint(body, int64(blk.Partition))
			body = binary.AppendUvarint(body, uint64(len(blk.Batches)))
			var prevEnd, prevAck int64
			for j, m := range blk.Batches {
				ack := m.AckTime.UnixMicro()
				if j == 0 {
					body = binary.AppendVarint(body, m.BaseOffset)
					body = binary.AppendVarint(body, ack)
				} else {
					body = binary.AppendVarint(body, m.BaseOffset-prevEnd)
					body = binary.AppendVarint(body, ack-prevAck)
				}
				body = binary.AppendUvarint(body, uint64(m.Span))
				body = binary.AppendUvarint(body, uint64(m.Records))
				body = binary.AppendVarint(body, m.MaxTimestamp-ack/1000)
				body = binary.AppendUvarint(body, uint64(m.entryLen))
				prevEnd, prevAck = m.BaseOffset+m.Span, ack
			}
		case blockEvents:
			body = binary.AppendUvarint(body, uint64(blk.Events))
			body = binary.AppendUvarint(body, blk.FirstSeq)
			body = binary.AppendVarint(body, blk.FirstTime.UnixMicro())
			body = binary.AppendVarint(body, blk.LastTime.UnixMicro())
		case blockLosses:
			body = appendString(body, blk.Topic)
			body = binary.AppendVarint(body, int64(blk.Partition))
			body = binary.AppendUvarint(body, uint64(len(blk.Losses)))
			for _, l := range blk.Losses {
				body = binary.AppendVarint(body, l.Start)
				body = binary.AppendVarint(body, l.End)
				body = appendString(body, l.Reason)
			}
		}
	}
	payload := zenc.EncodeAll(body, nil)
	var out []byte
	out = append(out, indexMagic...)
	flags := byte(0)
	if key != nil {
		flags |= flagEncrypted
		payload = key.seal(nil, payload, []byte(ix.Key))
	}
	out = append(out, flags, byte(len(key.ID())))
	out = append(out, key.ID()...)
	out = append(out, payload...)
	return binary.BigEndian.AppendUint32(out, crc32.Checksum(out, crcTab))
}

// decodeIndex parses an index object stored under name.
func decodeIndex(name string, b []byte, key *Key) (*Index, error) {
	bad := func(what string) error { return fmt.Errorf("%w: %s: %s", ErrCorrupt, name, what) }
	if len(b) < len(indexMagic)+2+4 || string(b[:len(indexMagic)]) != indexMagic {
		if len(b) >= 8 && bytes.HasPrefix(b, []byte("AMBRIDX")) && b[7] != indexMagic[7] { // not a truncated AMBRIDX1
			return nil, fmt.Errorf("%w: %s is index format %q, newer than this amber reads: upgrade amber", ErrFormat, name, b[7])
		}
		return nil, bad("not an index object")
	}
	body, sum := b[:len(b)-4], binary.BigEndian.Uint32(b[len(b)-4:])
	if crc32.Checksum(body, crcTab) != sum {
		return nil, bad("checksum mismatch")
	}
	flags, idLen := body[8], int(body[9])
	if 10+idLen > len(body) {
		return nil, bad("key id")
	}
	keyID := string(body[10 : 10+idLen])
	payload := body[10+idLen:]
	if flags&flagEncrypted != 0 {
		if err := checkKey(keyID, key, name); err != nil {
			return nil, err
		}
		p, err := key.open(payload, []byte(name))
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		payload = p
	}
	raw, err := zdec.DecodeAll(payload, nil)
	if err != nil {
		return nil, bad("decompress: " + err.Error())
	}
	r := &ixReader{b: raw}
	ix := &Index{Key: name, KeyID: keyID, ObjectSize: int64(len(b))}
	format := r.uvarint()
	if format != indexFormat && format != indexFormat2 {
		return nil, fmt.Errorf("%w: %s is index format %d, this amber reads %d and %d: upgrade amber", ErrFormat, name, format, indexFormat, indexFormat2)
	}
	ix.Writer = r.str()
	ix.Seq = r.uvarint()
	ix.Created = time.UnixMicro(r.varint()).UTC()
	ix.Segment = r.str()
	ix.SegSize = int64(r.uvarint())
	copy(ix.SegSHA256[:], r.bytes(32))
	n := r.uvarint()
	if n > uint64(len(raw)) {
		return nil, bad("block count")
	}
	ix.Blocks = make([]IndexBlock, 0, n)
	for i := uint64(0); i < n && r.err == nil; i++ {
		var blk IndexBlock
		blk.Kind = int(r.byte())
		blk.Offset = int64(r.uvarint())
		blk.Length = int64(r.uvarint())
		blk.RawLength = int64(r.uvarint())
		blk.Codec = int(r.byte())
		blk.CRC = binary.BigEndian.Uint32(r.bytes(4))
		switch blk.Kind {
		case blockBatches:
			blk.Topic = r.str()
			blk.Partition = int32(r.varint())
			nb := r.uvarint()
			if nb > uint64(len(raw)) {
				return nil, bad("batch count")
			}
			blk.Batches = make([]BatchMeta, 0, nb)
			var prevEnd, prevAck int64
			for j := uint64(0); j < nb && r.err == nil; j++ {
				var m BatchMeta
				base, ack := r.varint(), r.varint()
				if j > 0 {
					base, ack = prevEnd+base, prevAck+ack
				}
				m.BaseOffset, m.AckTime = base, time.UnixMicro(ack).UTC()
				m.Span = int64(r.uvarint())
				m.Records = int64(r.uvarint())
				m.MaxTimestamp = r.varint() + ack/1000
				m.entryLen = int(r.uvarint())
				prevEnd, prevAck = base+m.Span, ack
				blk.Batches = append(blk.Batches, m)
			}
		case blockEvents:
			blk.Events = int64(r.uvarint())
			blk.FirstSeq = r.uvarint()
			blk.FirstTime = time.UnixMicro(r.varint()).UTC()
			blk.LastTime = time.UnixMicro(r.varint()).UTC()
		case blockLosses:
			if format < indexFormat2 {
				return nil, bad("losses block in a format 1 index")
			}
			blk.Topic = r.str()
			blk.Partition = int32(r.varint())
			nl := r.uvarint()
			if nl > uint64(len(raw)) {
				return nil, bad("loss count")
			}
			for j := uint64(0); j < nl && r.err == nil; j++ {
				l := LossRange{Start: r.varint(), End: r.varint()}
				l.Reason = r.str()
				blk.Losses = append(blk.Losses, l)
			}
		default:
			return nil, bad(fmt.Sprintf("block kind %d", blk.Kind))
		}
		if blk.Offset < int64(len(segmentMagic)) || blk.Length < 0 || blk.Offset+blk.Length > ix.SegSize {
			return nil, bad("block outside its segment")
		}
		if blk.RawLength < 0 {
			return nil, bad("block raw length")
		}
		ix.Blocks = append(ix.Blocks, blk)
	}
	if r.err != nil {
		return nil, bad(r.err.Error())
	}
	return ix, nil
}

// ixReader reads index primitives, remembering the first error.
type ixReader struct {
	b   []byte
	err error
}

func (r *ixReader) fail(what string) {
	if r.err == nil {
		r.err = errors.New("truncated " + what)
	}
	r.b = nil
}

func (r *ixReader) uvarint() uint64 {
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.fail("uvarint")
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *ixReader) varint() int64 {
	v, n := binary.Varint(r.b)
	if n <= 0 {
		r.fail("varint")
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *ixReader) bytes(n int) []byte {
	if n > len(r.b) {
		r.fail("bytes")
		return make([]byte, n)
	}
	v := r.b[:n]
	r.b = r.b[n:]
	return v
}

func (r *ixReader) byte() byte { return r.bytes(1)[0] }

func (r *ixReader) str() string {
	n := r.uvarint()
	if n > uint64(len(r.b)) {
		r.fail("string")
		return ""
	}
	return string(r.bytes(int(n)))
}

// maxBlockPrealloc bounds the buffer decodeBlock allocates up front from
// a block's stated raw length (a larger block grows it as it decodes).
const maxBlockPrealloc = 64 << 20

// decodeBlock checks, decrypts and decompresses a block's stored bytes.
func decodeBlock(ix *Index, n int, stored []byte, key *Key) ([]byte, error) {
	blk := &ix.Blocks[n]
	if int64(len(stored)) != blk.Length || crc32.Checksum(stored, crcTab) != blk.CRC {
		return nil, fmt.Errorf("%w: %s block %d checksum mismatch", ErrCorrupt, ix.Segment, n)
	}
	if ix.KeyID != "" {
		if err := checkKey(ix.KeyID, key, ix.Segment); err != nil {
			return nil, err
		}
		p, err := key.open(stored, blockAAD(ix.Segment, n))
		if err != nil {
			return nil, fmt.Errorf("%s block %d: %w", ix.Segment, n, err)
		}
		stored = p
	}
	if blk.Codec == codecZstd {
		// The index's raw length sizes the buffer only up to a bound: a
		// damaged or hostile index could state any length.
		raw, err := zdec.DecodeAll(stored, make([]byte, 0, min(max(blk.RawLength, 0), maxBlockPrealloc)))
		if err != nil {
			return nil, fmt.Errorf("%w: %s block %d: %v", ErrCorrupt, ix.Segment, n, err)
		}
		stored = raw
	}
	if int64(len(stored)) != blk.RawLength {
		return nil, fmt.Errorf("%w: %s block %d is %d bytes, index says %d", ErrCorrupt, ix.Segment, n, len(stored), blk.RawLength)
	}
	return stored, nil
}

// forEachBatchEntry decodes a batches block payload.
func forEachBatchEntry(blk *IndexBlock, payload []byte, fn func(*Batch) error) error {
	for len(payload) > 0 {
		n, w := binary.Uvarint(payload)
		if w <= 0 || uint64(len(payload)-w) < n || n < 24 {
			return fmt.Errorf("%w: batch entry length", ErrCorrupt)
		}
		e := payload[w : w+int(n)]
		payload = payload[w+int(n):]
		b := Batch{Topic: blk.Topic, Partition: blk.Partition}
		b.BaseOffset = int64(binary.BigEndian.Uint64(e))
		b.AckTime = time.UnixMicro(int64(binary.BigEndian.Uint64(e[8:]))).UTC()
		b.LogAppendTime = int64(binary.BigEndian.Uint64(e[16:]))
		cl, cw := binary.Uvarint(e[24:])
		if cw <= 0 || uint64(len(e)-24-cw) < cl {
			return fmt.Errorf("%w: batch entry client id", ErrCorrupt)
		}
		b.ClientID = string(e[24+cw : 24+cw+int(cl)])
		b.Data = e[24+cw+int(cl):]
		if err := fn(&b); err != nil {
			return err
		}
	}
	return nil
}

// forEachEventEntry decodes an events block payload.
func forEachEventEntry(payload []byte, fn func(*Event) error) error {
	for len(payload) > 0 {
		n, w := binary.Uvarint(payload)
		if w <= 0 || uint64(len(payload)-w) < n || n < 8 {
			return fmt.Errorf("%w: event entry length", ErrCorrupt)
		}
		e := payload[w : w+int(n)]
		payload = payload[w+int(n):]
		var ev Event
		ev.Seq = binary.BigEndian.Uint64(e)
		if err := decodeEventValue(e[8:], &ev); err != nil {
			return err
		}
		if err := fn(&ev); err != nil {
			return err
		}
	}
	return nil
}
