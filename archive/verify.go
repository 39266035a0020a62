package archive

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/amber-kafka/amber/protocol"
)

// Verify (integrity): every object of an archive read in full and checked
// against what its index says, without trusting any of it:
//
//   - every index: its CRC32C, its format, its key matching the writer and
//     upload number inside it, its segment present with the size it gives;
//   - every segment: its SHA-256 against its index, its magic, its blocks
//     laid end to end over the whole object;
//   - every block: its CRC32C, decryption, decompression and raw length;
//   - every batch: its CRC32C (protocol.CheckCRC), and the index's base
//     offset, span, record count, max timestamp, ack time and entry
//     length against the batch and its entry;
//   - every events block: its count, first sequence and times, every
//     event decoding; every losses block against the segment's
//     known_loss events;
//   - segments without an index are orphans (an interrupted upload, not
//     part of the archive: prune removes them), reported as warnings, as
//     are objects Amber did not write.
//
// It does not open the archive through OpenArchive, which refuses a bad
// index: it reports each problem, naming the object, and goes on.

// DefaultVerifyConcurrency is how many segments are read at once.
const DefaultVerifyConcurrency = 4

// VerifyOptions configures VerifyIntegrity.
type VerifyOptions struct {
	// Key decrypts an encrypted archive.
	Key *Key
	// Concurrency: segments read at once. Default
	// DefaultVerifyConcurrency.
	Concurrency int
	// Progress, if set, is called with the object bytes read so far and
	// the total to read.
	Progress func(done, total int64)
}

// Problem is one thing wrong with one archive object.
type Problem struct {
	Object  string `json:"object"`
	Block   int    `json:"block"` // -1: the object as a whole
	Message string `json:"message"`
	// Warning marks what does not make the archive wrong (an orphaned
	// segment, an object Amber did not write).
	Warning bool `json:"warning,omitempty"`
}

func (p Problem) String() string {
	s := p.Object
	if p.Block >= 0 {
		s += fmt.Sprintf(" block %d", p.Block)
	}
	if p.Warning {
		return "warning: " + s + ": " + p.Message
	}
	return s + ": " + p.Message
}

// IntegrityReport is what VerifyIntegrity checked and found.
type IntegrityReport struct {
	Indexes  int           `json:"indexes"`
	Segments int           `json:"segments"`
	Blocks   int64         `json:"blocks"`
	Batches  int64         `json:"batches"`
	Records  int64         `json:"records"`
	Events   int64         `json:"events"`
	Bytes    int64         `json:"bytes"` // object bytes read
	Duration time.Duration `json:"duration_ns"`
	Problems []Problem     `json:"problems"`
}

// OK reports whether nothing but warnings was found.
func (r *IntegrityReport) OK() bool {
	for _, p := range r.Problems {
		if !p.Warning {
			return false
		}
	}
	return true
}

// VerifyIntegrity reads every object of the archive in store and checks
// it. The error is for a store that cannot be listed; everything wrong
// with the objects is in the report.
func VerifyIntegrity(ctx context.Context, store Store, opts VerifyOptions) (*IntegrityReport, error) {
	if opts.Concurrency <= 0 {
		opts.Concurrency = DefaultVerifyConcurrency
	}
	start := time.Now()
	rep := &IntegrityReport{Problems: []Problem{}}
	objects := map[string]int64{}
	var idxKeys []string
	if err := store.List(ctx, "", func(o ObjectInfo) error {
		objects[o.Key] = o.Size
		if strings.HasPrefix(o.Key, "v1/idx/") && strings.HasSuffix(o.Key, ".idx") {
			idxKeys = append(idxKeys, o.Key)
		}
		return nil
	}); err != nil {
		return nil, fmt.Errorf("list %s: %w", store, err)
	}
	var total int64
	for _, size := range objects {
		total += size
	}

	v := &verifier{store: store, key: opts.Key, rep: rep, objects: objects, indexed: map[string]bool{}}
	progress := func(n int64) {
		if d := v.read.Add(n); opts.Progress != nil {
			opts.Progress(d, total)
		}
	}
	var (
		wg  sync.WaitGroup
		sem = make(chan struct{}, opts.Concurrency)
	)
	for _, key := range idxKeys {
		if ctx.Err() != nil {
			break
		}
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			v.index(ctx, key, progress)
		}()
	}
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	keys := make([]string, 0, len(objects))
	for k := range objects {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		switch {
		case strings.HasPrefix(k, "v1/idx/") && strings.HasSuffix(k, ".idx"):
		case strings.HasPrefix(k, "v1/seg/") && strings.HasSuffix(k, ".seg"):
			if !v.indexed[k] {
				v.problem(Problem{Object: k, Block: -1, Warning: true, Message: "segment without an index: an interrupted upload, not part of the archive (amber prune removes it)"})
			}
		default:
			v.problem(Problem{Object: k, Block: -1, Warning: true, Message: "not an object Amber writes"})
		}
	}
	rep.Bytes = v.read.Load()
	rep.Duration = time.Since(start)
	sort.SliceStable(rep.Problems, func(i, j int) bool {
		if rep.Problems[i].Object != rep.Problems[j].Object {
			return rep.Problems[i].Object < rep.Problems[j].Object
		}
		return rep.Problems[i].Block < rep.Problems[j].Block
	})
	return rep, nil
}

type verifier struct {
	store   Store
	key     *Key
	objects map[string]int64 // read only once listed
	read    atomic.Int64

	mu      sync.Mutex // guards rep and indexed
	rep     *IntegrityReport
	indexed map[string]bool
}

func (v *verifier) problem(p Problem) {
	v.mu.Lock()
	v.rep.Problems = append(v.rep.Problems, p)
	v.mu.Unlock()
}

func (v *verifier) get(ctx context.Context, key string, progress func(int64)) ([]byte, error) {
	rc, err := v.store.Get(ctx, key)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	progress(int64(len(b)))
	return b, err
}

// index checks one index and the segment it names.
func (v *verifier) index(ctx context.Context, key string, progress func(int64)) {
	bad := func(block int, format string, args ...any) {
		v.problem(Problem{Object: key, Block: block, Message: fmt.Sprintf(format, args...)})
	}
	raw, err := v.get(ctx, key, progress)
	if err != nil {
		bad(-1, "read: %v", err)
		return
	}
	ix, err := decodeIndex(key, raw, v.key)
	if err != nil {
		bad(-1, "%s", strings.TrimPrefix(strings.TrimPrefix(err.Error(), ErrCorrupt.Error()+": "), key+": "))
		return
	}
	v.mu.Lock()
	v.rep.Indexes++
	v.indexed[ix.Segment] = true
	v.mu.Unlock()
	if want := IndexKey(ix.Writer, ix.Seq); want != key {
		bad(-1, "says it is writer %s upload %d, whose index is %s", ix.Writer, ix.Seq, want)
	}
	if want := SegmentKey(ix.Writer, ix.Seq); ix.Segment != want {
		bad(-1, "names segment %s, want %s", ix.Segment, want)
	}
	size, ok := v.objects[ix.Segment]
	if !ok {
		bad(-1, "its segment %s is missing", ix.Segment)
		return
	}
	if size != ix.SegSize {
		v.problem(Problem{Object: ix.Segment, Block: -1, Message: fmt.Sprintf("%d bytes, its index %s says %d", size, key, ix.SegSize)})
	}
	seg, err := v.get(ctx, ix.Segment, progress)
	if err != nil {
		v.problem(Problem{Object: ix.Segment, Block: -1, Message: fmt.Sprintf("read: %v", err)})
		return
	}
	v.mu.Lock()
	v.rep.Segments++
	v.mu.Unlock()
	v.segment(ix, seg)
}

// segment checks a segment's bytes against its index.
func (v *verifier) segment(ix *Index, seg []byte) {
	bad := func(block int, format string, args ...any) {
		v.problem(Problem{Object: ix.Segment, Block: block, Message: fmt.Sprintf(format, args...)})
	}
	if sum := sha256.Sum256(seg); sum != ix.SegSHA256 {
		bad(-1, "SHA-256 %x, its index %s says %x: the object was changed or damaged", sum[:8], ix.Key, ix.SegSHA256[:8])
	}
	if !bytes.HasPrefix(seg, []byte(segmentMagic)) {
		bad(-1, "does not start with %s", segmentMagic)
	}
	var (
		next     = int64(len(segmentMagic))
		lossSeen = map[tp][]LossRange{}
		lossIdx  = map[tp][]LossRange{}
		stats    struct{ blocks, batches, records, events int64 }
	)
	for n := range ix.Blocks {
		blk := &ix.Blocks[n]
		if blk.Kind == blockLosses {
			k := tp{blk.Topic, blk.Partition}
			lossIdx[k] = append(lossIdx[k], blk.Losses...)
			continue
		}
		stats.blocks++
		if blk.Offset != next {
			bad(n, "starts at byte %d, the previous block ends at %d", blk.Offset, next)
		}
		next = blk.Offset + blk.Length
		if blk.Offset+blk.Length > int64(len(seg)) {
			bad(n, "runs past the end of the object (%d+%d > %d bytes)", blk.Offset, blk.Length, len(seg))
			continue
		}
		payload, err := decodeBlock(ix, n, seg[blk.Offset:blk.Offset+blk.Length], v.key)
		if err != nil {
			bad(n, "%s", strings.TrimPrefix(strings.TrimPrefix(err.Error(), ErrCorrupt.Error()+": "), ix.Segment+" "))
			continue
		}
		switch blk.Kind {
		case blockBatches:
			b, r := v.batches(ix, n, payload)
			stats.batches += b
			stats.records += r
		case blockEvents:
			stats.events += v.events(ix, n, payload, lossSeen)
		}
	}
	if next != int64(len(seg)) && int64(len(seg)) == ix.SegSize {
		bad(-1, "blocks end at byte %d of %d", next, len(seg))
	}
	for k, want := range lossSeen {
		if fmt.Sprint(mergeLosses(append([]LossRange(nil), lossIdx[k]...))) != fmt.Sprint(mergeLosses(want)) {
			bad(-1, "its index summarises the known losses of %s/%d as %v, its events say %v", k.topic, k.partition, lossIdx[k], want)
		}
	}
	for k, got := range lossIdx {
		if _, ok := lossSeen[k]; !ok {
			bad(-1, "its index lists known losses of %s/%d (%v) no event records", k.topic, k.partition, got)
		}
	}
	v.mu.Lock()
	v.rep.Blocks += stats.blocks
	v.rep.Batches += stats.batches
	v.rep.Records += stats.records
	v.rep.Events += stats.events
	v.mu.Unlock()
}

// batches checks a batches block against its index entry.
func (v *verifier) batches(ix *Index, n int, payload []byte) (batches, records int64) {
	blk := &ix.Blocks[n]
	bad := func(format string, args ...any) {
		v.problem(Problem{Object: ix.Segment, Block: n, Message: fmt.Sprintf("%s/%d: ", blk.Topic, blk.Partition) + fmt.Sprintf(format, args...)})
	}
	i := 0
	err := forEachBatchEntry(blk, payload, func(b *Batch) error {
		defer func() { i++ }()
		if i >= len(blk.Batches) {
			if i == len(blk.Batches) {
				bad("more batches than the %d its index lists", len(blk.Batches))
			}
			return nil
		}
		m := &blk.Batches[i]
		at := fmt.Sprintf("batch %d (offset %d)", i, m.BaseOffset)
		h, err := protocol.ParseBatchHeader(b.Data)
		if err != nil {
			bad("%s: %v", at, err)
			return nil
		}
		if h.Size() != len(b.Data) {
			bad("%s: %d bytes after the batch in its entry", at, len(b.Data)-h.Size())
		}
		if err := protocol.CheckCRC(&h, b.Data); err != nil {
			bad("%s: %v", at, err)
		}
		batches++
		records += int64(h.NumRecords)
		var diffs []string
		check := func(what string, got, want int64) {
			if got != want {
				diffs = append(diffs, fmt.Sprintf("%s %d, index says %d", what, got, want))
			}
		}
		check("base offset", b.BaseOffset, m.BaseOffset)
		check("span", h.Records(), m.Span)
		check("records", int64(h.NumRecords), m.Records)
		check("max timestamp", h.MaxTimestamp, m.MaxTimestamp)
		check("ack time µs", b.AckTime.UnixMicro(), m.AckTime.UnixMicro())
		if h.FirstOffset != 0 {
			diffs = append(diffs, fmt.Sprintf("first offset %d in the stored batch, want 0", h.FirstOffset))
		}
		if len(diffs) > 0 {
			bad("%s: %s", at, strings.Join(diffs, "; "))
		}
		return nil
	})
	if err != nil {
		bad("%v", err)
	} else if i < len(blk.Batches) {
		bad("%d batches, its index lists %d", i, len(blk.Batches))
	}
	// Entry lengths: the index's must add up to the payload.
	var sum int64
	for _, m := range blk.Batches {
		sum += int64(m.entryLen)
	}
	if err == nil && sum != int64(len(payload)) {
		bad("index entry lengths add up to %d bytes, the block holds %d", sum, len(payload))
	}
	return batches, records
}

// events checks an events block against its index entry and collects the
// known losses its events record.
func (v *verifier) events(ix *Index, n int, payload []byte, losses map[tp][]LossRange) int64 {
	blk := &ix.Blocks[n]
	bad := func(format string, args ...any) {
		v.problem(Problem{Object: ix.Segment, Block: n, Message: "events: " + fmt.Sprintf(format, args...)})
	}
	var (
		count          int64
		first, last    time.Time
		firstSeq, prev uint64
	)
	err := forEachEventEntry(payload, func(ev *Event) error {
		if count == 0 {
			first, firstSeq = ev.Time, ev.Seq
		} else if ev.Seq <= prev {
			bad("sequence %d after %d", ev.Seq, prev)
		}
		prev, last = ev.Seq, ev.Time
		count++
		if k, l, ok := lossFromEvent(ev); ok {
			losses[k] = append(losses[k], l)
		} else if ev.Kind == KindKnownLoss {
			bad("event %d: known_loss body does not parse", ev.Seq)
		}
		return nil
	})
	switch {
	case err != nil:
		bad("%v", err)
	case count != blk.Events:
		bad("%d events, its index says %d", count, blk.Events)
	case count > 0 && (firstSeq != blk.FirstSeq || !first.Equal(blk.FirstTime) || !last.Equal(blk.LastTime)):
		bad("first sequence %d, times %s..%s; its index says %d, %s..%s", firstSeq, first.Format(time.RFC3339Nano), last.Format(time.RFC3339Nano),
			blk.FirstSeq, blk.FirstTime.Format(time.RFC3339Nano), blk.LastTime.Format(time.RFC3339Nano))
	}
	return count
}
