package archive

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"hash/crc32"
	"io"
	"testing"
	"time"
)

// FuzzSegmentBlock: a segment block whose index entry matches its stored
// bytes (length and CRC32C right, as a writer bug or a tamperer who
// recomputes checksums would leave it, where random damage is caught by
// the checksums already) never panics a reader, whatever its kind, codec,
// stated raw length and bytes: decodeBlock reports ErrCorrupt or returns
// exactly the stated raw length; the batch and event entry walkers, the
// verifier's block checks, Archive.ReadPartition, ScanPartition and
// Events return errors. Seeds are a real batches block and events block,
// stored plain and zstd-compressed.
func FuzzSegmentBlock(f *testing.F) {
	for _, compress := range []bool{false, true} {
		sb := newSegmentBuilder("00000000000000aa", 0, nil)
		for i := range 8 {
			data := testBatch()
			if compress { // repetitive values make the block worth compressing
				data = bytes.Repeat(data, 1)
			}
			sb.addBatch(&Batch{Topic: "t", Partition: 0, BaseOffset: int64(i), AckTime: time.Unix(5, 0), LogAppendTime: -1, ClientID: "c", Data: data})
		}
		sb.addEvent(&Event{Seq: 0, Time: time.Unix(6, 0), Kind: KindDeleteGroups, Body: mustJSON(GroupDeletedEvent{Group: "g"})})
		seg, _ := sb.finish()
		for _, blk := range sb.idx.Blocks {
			f.Add(uint8(blk.Kind), uint8(blk.Codec), uint64(blk.RawLength), seg[blk.Offset:blk.Offset+blk.Length])
		}
	}
	f.Add(uint8(blockBatches), uint8(codecZstd), uint64(1<<62), zenc.EncodeAll([]byte("x"), nil))
	f.Fuzz(func(t *testing.T, kind, codec uint8, rawLen uint64, stored []byte) {
		const writer = "00000000000000aa"
		blk := IndexBlock{Kind: int(kind%3) + 1, Offset: int64(len(segmentMagic)), Length: int64(len(stored)),
			RawLength: int64(rawLen), Codec: int(codec % 3), CRC: crc32.Checksum(stored, crcTab), Topic: "t"}
		if blk.Kind == blockBatches {
			blk.Batches = []BatchMeta{{BaseOffset: 0, Span: 1, Records: 1, entryLen: len(stored)}}
		}
		seg := append([]byte(segmentMagic), stored...)
		ix := &Index{Key: IndexKey(writer, 0), Writer: writer, Segment: SegmentKey(writer, 0), SegSize: int64(len(seg)),
			SegSHA256: sha256.Sum256(seg), Blocks: []IndexBlock{blk}}

		payload, err := decodeBlock(ix, 0, stored, nil)
		if err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("decodeBlock: %v, want ErrCorrupt", err)
			}
		} else {
			if int64(len(payload)) != blk.RawLength {
				t.Fatalf("decodeBlock returned %d bytes, the index says %d", len(payload), blk.RawLength)
			}
			forEachBatchEntry(&blk, payload, func(b *Batch) error { return nil })
			forEachEventEntry(payload, func(*Event) error { return nil })
		}
		v := &verifier{key: nil, objects: map[string]int64{ix.Segment: int64(len(seg))}, rep: &IntegrityReport{}, indexed: map[string]bool{}}
		v.segment(ix, seg)

		ctx := context.Background()
		a := &Archive{store: sliceStore{ix.Segment: seg}, indexes: []*Index{ix}}
		a.ReadPartition(ctx, "t", 0, func(*Batch) error { return nil })
		a.ScanPartition(ctx, "t", 0, 0, func(*Batch) error { return nil })
		a.Events(ctx, func(string, *Event) error { return nil })
	})
}

// sliceStore is a read-only Store over a map, for the fuzz target
// (memstore imports this package).
type sliceStore map[string][]byte

func (s sliceStore) Put(context.Context, string, io.Reader, int64) error {
	return errors.New("read only")
}
func (s sliceStore) Get(_ context.Context, key string) (io.ReadCloser, error) {
	b, ok := s[key]
	if !ok {
		return nil, ErrNotFound
	}
	return io.NopCloser(bytes.NewReader(b)), nil
}
func (s sliceStore) GetRange(_ context.Context, key string, off, n int64) (io.ReadCloser, error) {
	b, ok := s[key]
	if !ok {
		return nil, ErrNotFound
	}
	off = min(max(off, 0), int64(len(b)))
	return io.NopCloser(bytes.NewReader(b[off:min(off+max(n, 0), int64(len(b)))])), nil
}
func (s sliceStore) Stat(_ context.Context, key string) (ObjectInfo, error) {
	b, ok := s[key]
	if !ok {
		return ObjectInfo{}, ErrNotFound
	}
	return ObjectInfo{Key: key, Size: int64(len(b))}, nil
}
func (s sliceStore) List(_ context.Context, prefix string, fn func(ObjectInfo) error) error {
	return nil
}
func (s sliceStore) Delete(context.Context, string) error { return nil }
func (s sliceStore) String() string                       { return "slice://" }
