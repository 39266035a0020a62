package archive

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"go.uber.org/zap"
)

// DefaultWriterMaxInFlight is how many segments a Writer uploads at once
// while more is written.
const DefaultWriterMaxInFlight = 2

// WriterOptions configures a Writer.
type WriterOptions struct {
	Store Store // required
	// WriterID names the objects. Required; NewWriterID makes a fresh
	// one. Uploads continue after the highest number the store already
	// holds for it.
	WriterID string
	// Key, if set, encrypts every object.
	Key *Key
	// FlushBytes is the target segment size. Default DefaultFlushBytes.
	FlushBytes int
	// MaxInFlight bounds the segments being built and uploaded at once;
	// past it Write waits. Default DefaultWriterMaxInFlight.
	MaxInFlight int
	// Logger, default nop.
	Logger *zap.Logger
}

// WriterStats are a Writer's cumulative counters.
type WriterStats struct {
	Uploads    int64 // segments uploaded, each with its index
	Bytes      int64 // object bytes written
	Batches    int64 // batches written
	BatchBytes int64 // their bytes
	Events     int64
}

// Writer writes batches and events straight into a store as one writer's
// uploads: segments of about FlushBytes, each built and PUT with its index
// by a goroutine of its own while more is written, in exactly the format
// the Uploader writes. It has no journal, and needs none for what it is
// used for: a backfill's data can always be fetched again, so what a crash
// leaves unuploaded is simply fetched by the next backfill. Objects are
// never overwritten: a key that exists with other bytes is an error (two
// writers with one id).
type Writer struct {
	opts WriterOptions
	log  *zap.Logger
	sem  chan struct{}
	wg   sync.WaitGroup
	bufs sync.Pool // *[]byte: segment and payload buffers, reused

	mu struct {
		sync.Mutex
		parts   map[tp][]Batch
		events  []Event
		size    int
		nextEv  uint64 // next event sequence
		nextSeq uint64 // next upload number
		err     error  // first upload error
	}
	stats struct{ uploads, bytes, batches, batchBytes, events atomic.Int64 }
}

var _ Sink = (*Writer)(nil)

// NewWriterID returns a fresh random writer id.
func NewWriterID() string {
	var raw [8]byte
	rand.Read(raw[:])
	return hex.EncodeToString(raw[:])
}

// NewWriter returns a writer that continues after whatever the store
// already holds under opts.WriterID.
func NewWriter(ctx context.Context, opts WriterOptions) (*Writer, error) {
	if opts.FlushBytes == 0 {
		opts.FlushBytes = DefaultFlushBytes
	}
	if opts.MaxInFlight == 0 {
		opts.MaxInFlight = DefaultWriterMaxInFlight
	}
	if opts.Logger == nil {
		opts.Logger = zap.NewNop()
	}
	var errs []error
	if opts.Store == nil {
		errs = append(errs, errors.New("writer: no store"))
	}
	if !validWriterID(opts.WriterID) {
		errs = append(errs, fmt.Errorf("writer: writer id %q: want 16 hex characters", opts.WriterID))
	}
	if opts.FlushBytes < 1<<10 || opts.MaxInFlight < 1 {
		errs = append(errs, fmt.Errorf("writer: flush bytes %d, max in flight %d: want at least 1 KiB and 1", opts.FlushBytes, opts.MaxInFlight))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	w := &Writer{opts: opts, log: opts.Logger.With(zap.String("component", "writer"), zap.String("writer_id", opts.WriterID)),
		sem: make(chan struct{}, opts.MaxInFlight)}
	w.mu.parts = map[tp][]Batch{}
	// Continue after this writer's highest upload number, segment or
	// index (a segment without an index is an interrupted upload).
	for _, dir := range []string{"v1/seg/", "v1/idx/"} {
		prefix := dir + opts.WriterID + "/"
		err := opts.Store.List(ctx, prefix, func(o ObjectInfo) error {
			name := strings.TrimPrefix(o.Key, prefix)
			if i := strings.IndexByte(name, '.'); i > 0 {
				if n, err := strconv.ParseUint(name[:i], 16, 64); err == nil && n+1 > w.mu.nextSeq {
					w.mu.nextSeq = n + 1
				}
			}
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("list %s: %w", opts.Store, err)
		}
	}
	return w, nil
}

// ID is the writer id.
func (w *Writer) ID() string { return w.opts.WriterID }

// Write copies batches and events into the pending segment and starts an
// upload once it holds FlushBytes. It waits while MaxInFlight uploads run,
// and returns the first error of an earlier upload.
func (w *Writer) Write(ctx context.Context, batches []Batch, events []Event) error {
	return w.write(ctx, batches, events, true)
}

// writeOwned is Write for a caller that hands batch data over: the writer
// keeps it, uncopied, until it is uploaded (a backfill's fetch responses,
// which nothing else holds).
func (w *Writer) writeOwned(ctx context.Context, batches []Batch, events []Event) error {
	return w.write(ctx, batches, events, false)
}

func (w *Writer) write(ctx context.Context, batches []Batch, events []Event, copyData bool) error {
	n := 0
	for i := range batches {
		n += len(batches[i].Data)
	}
	var buf []byte
	if copyData {
		buf = make([]byte, 0, n)
	}
	w.mu.Lock()
	if err := w.mu.err; err != nil {
		w.mu.Unlock()
		return err
	}
	for _, b := range batches {
		if copyData {
			start := len(buf)
			buf = append(buf, b.Data...)
			b.Data = buf[start:len(buf):len(buf)]
		}
		k := tp{b.Topic, b.Partition}
		w.mu.parts[k] = append(w.mu.parts[k], b)
		w.mu.size += len(b.Data) + 64
	}
	for _, ev := range events {
		ev.Seq = w.mu.nextEv
		w.mu.nextEv++
		w.mu.events = append(w.mu.events, ev)
		w.mu.size += len(ev.Body) + 64
	}
	w.stats.batches.Add(int64(len(batches)))
	w.stats.batchBytes.Add(int64(n))
	w.stats.events.Add(int64(len(events)))
	if w.mu.size < w.opts.FlushBytes {
		w.mu.Unlock()
		return nil
	}
	return w.startUploadLocked(ctx)
}

// startUploadLocked takes everything pending as one upload and starts it
// once an upload slot is free. It unlocks w.mu.
func (w *Writer) startUploadLocked(ctx context.Context) error {
	parts, events, seq := w.mu.parts, w.mu.events, w.mu.nextSeq
	w.mu.parts, w.mu.events, w.mu.size = map[tp][]Batch{}, nil, 0
	w.mu.nextSeq++
	w.mu.Unlock()
	select {
	case w.sem <- struct{}{}:
	case <-ctx.Done():
		w.setErr(fmt.Errorf("upload %d not started: %w", seq, ctx.Err()))
		return ctx.Err()
	}
	w.wg.Add(1)
	go func() {
		defer func() { <-w.sem; w.wg.Done() }()
		if err := w.upload(ctx, seq, parts, events); err != nil {
			w.setErr(err)
		}
	}()
	return nil
}

func (w *Writer) setErr(err error) {
	w.mu.Lock()
	if w.mu.err == nil {
		w.mu.err = err
	}
	w.mu.Unlock()
}

// upload builds one segment (partitions in order, each one's batches in
// offset order, then the events) and PUTs it, then its index.
func (w *Writer) upload(ctx context.Context, seq uint64, parts map[tp][]Batch, events []Event) error {
	keys := make([]tp, 0, len(parts))
	for k := range parts {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		if keys[i].topic != keys[j].topic {
			return keys[i].topic < keys[j].topic
		}
		return keys[i].partition < keys[j].partition
	})
	sb := newSegmentBuilder(w.opts.WriterID, seq, w.opts.Key)
	size, largest := 0, 0
	for _, bs := range parts {
		n := 0
		for i := range bs {
			n += len(bs[i].Data) + 48
		}
		size, largest = size+n, max(largest, n)
	}
	segBuf, payBuf := w.buf(size+size/64+4<<10), w.buf(largest)
	defer func() { w.bufs.Put(segBuf); w.bufs.Put(payBuf) }()
	sb.useBuffers((*segBuf)[:0], (*payBuf)[:0])
	for _, k := range keys {
		bs := parts[k]
		sort.SliceStable(bs, func(i, j int) bool { return bs[i].BaseOffset < bs[j].BaseOffset })
		for i := range bs {
			if err := sb.addBatch(&bs[i]); err != nil {
				return err
			}
		}
	}
	for i := range events {
		sb.addEvent(&events[i])
	}
	seg, idx := sb.finish()
	for _, o := range []struct {
		key string
		b   []byte
	}{{SegmentKey(w.opts.WriterID, seq), seg}, {IndexKey(w.opts.WriterID, seq), idx}} {
		taken, err := putNew(ctx, w.opts.Store, o.key, o.b)
		if err != nil {
			return err
		}
		if taken {
			return fmt.Errorf("%s exists with other content: is another writer using id %s?", o.key, w.opts.WriterID)
		}
	}
	w.stats.uploads.Add(1)
	w.stats.bytes.Add(int64(len(seg) + len(idx)))
	w.log.Debug("uploaded segment", zap.Uint64("seq", seq), zap.Int("bytes", len(seg)))
	return nil
}

// buf returns a pooled buffer of at least n bytes: segments are tens of
// megabytes, and a fresh one would be zeroed by the runtime each time.
func (w *Writer) buf(n int) *[]byte {
	if b, ok := w.bufs.Get().(*[]byte); ok && cap(*b) >= n {
		return b
	}
	b := make([]byte, 0, n)
	return &b
}

// Flush uploads whatever is pending and waits for every upload; it
// returns the first error of any.
func (w *Writer) Flush(ctx context.Context) error {
	w.mu.Lock()
	if w.mu.err == nil && (len(w.mu.parts) > 0 || len(w.mu.events) > 0) {
		w.startUploadLocked(ctx)
	} else {
		w.mu.Unlock()
	}
	w.wg.Wait()
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.mu.err
}

// Stats returns the writer's counters.
func (w *Writer) Stats() WriterStats {
	return WriterStats{Uploads: w.stats.uploads.Load(), Bytes: w.stats.bytes.Load(), Batches: w.stats.batches.Load(),
		BatchBytes: w.stats.batchBytes.Load(), Events: w.stats.events.Load()}
}
