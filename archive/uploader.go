package archive

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"math"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"
)

// Defaults for UploaderOptions.
const (
	DefaultFlushInterval = 10 * time.Second
	DefaultFlushBytes    = 32 << 20
	// DefaultUploaderMaxInFlight is how many segments an Uploader builds
	// ahead and PUTs at once.
	DefaultUploaderMaxInFlight = 2
	DefaultMaxBackoff          = time.Minute
	// DefaultAttemptTimeout bounds one upload attempt.
	DefaultAttemptTimeout = 2 * time.Minute
)

// UploaderOptions configures an Uploader.
type UploaderOptions struct {
	Journal *Journal // required
	Store   Store    // required
	// WriterID names this writer's objects. Required (LoadWriterID).
	WriterID string
	// FlushInterval: upload at least this often while anything waits.
	// Default DefaultFlushInterval (10 s).
	FlushInterval time.Duration
	// FlushBytes is the target segment size; the loop uploads as soon
	// as about this much waits, counted as it will be stored (see
	// dueBytes). Default DefaultFlushBytes (32 MiB).
	FlushBytes int
	// MaxInFlight bounds the segments built and not yet recorded: PUT
	// at once, or built while others are PUT. Each holds a buffer of
	// about FlushBytes. Default DefaultUploaderMaxInFlight (2).
	MaxInFlight int
	// MaxBackoff caps the wait between retries while the store fails.
	// Default DefaultMaxBackoff (1 min).
	MaxBackoff time.Duration
	// AttemptTimeout bounds one upload attempt, so a store that stops
	// answering (rather than refusing) is retried, not waited on forever.
	// Default DefaultAttemptTimeout (2 min).
	AttemptTimeout time.Duration
	// Key, if set, encrypts every object (AES-256-GCM).
	Key *Key
	// Logger, default nop.
	Logger *zap.Logger
}

// UploaderStats are cumulative counters.
type UploaderStats struct {
	Segments      int64 // segments uploaded (each with its index)
	Objects       int64 // objects written
	Bytes         int64 // bytes written
	BatchBytes    int64 // journaled batch bytes those carried
	Failures      int64 // failed upload attempts
	LastUpload    time.Time
	LastError     string
	ConsecFailure int64 // failures since the last success
}

// Uploader moves the journal into the archive store: on size or time it
// takes what is journaled, writes it as a segment and its index, and only
// once the store has confirmed both deletes it from the journal. While the
// store fails it retries with capped exponential backoff and the journal
// keeps growing, up to the journal's MaxBacklogBytes.
type Uploader struct {
	opts UploaderOptions
	log  *zap.Logger

	stop    chan struct{}
	done    chan struct{}
	once    sync.Once
	stopErr error
	started atomic.Bool

	// bufs are segment buffers (*segBuf), reused across uploads.
	bufs sync.Pool
	// flushMu makes Flushes take turns: each builds ahead under the
	// next upload numbers. Under it: proven, an upload of this Uploader
	// has been recorded (see flushRun.limit); queue and cur, what a
	// failed flush built and where it got to, for the next one.
	flushMu sync.Mutex
	proven  bool
	queue   []inflight
	cur     fillCursor
	// ratio is the float64 bits of the last uploaded segment's size over
	// its batches' journaled bytes (0: none yet); see dueBytes.
	ratio atomic.Uint64

	stats struct {
		segments, objects, bytes, batchBytes, failures, consec, lastUpload atomic.Int64
		mu                                                                 sync.Mutex
		lastErr                                                            error
	}
}

// NewUploader validates opts and returns an unstarted uploader.
func NewUploader(opts UploaderOptions) (*Uploader, error) {
	if opts.FlushInterval == 0 {
		opts.FlushInterval = DefaultFlushInterval
	}
	if opts.FlushBytes == 0 {
		opts.FlushBytes = DefaultFlushBytes
	}
	if opts.MaxInFlight == 0 {
		opts.MaxInFlight = DefaultUploaderMaxInFlight
	}
	if opts.MaxBackoff == 0 {
		opts.MaxBackoff = DefaultMaxBackoff
	}
	if opts.AttemptTimeout == 0 {
		opts.AttemptTimeout = DefaultAttemptTimeout
	}
	if opts.Logger == nil {
		opts.Logger = zap.NewNop()
	}
	var errs []error
	if opts.Journal == nil {
		errs = append(errs, errors.New("uploader: no journal"))
	}
	if opts.Store == nil {
		errs = append(errs, errors.New("uploader: no store"))
	}
	if !validWriterID(opts.WriterID) {
		errs = append(errs, fmt.Errorf("uploader: writer id %q: want 16 hex characters", opts.WriterID))
	}
	if opts.FlushInterval < 0 || opts.FlushBytes < 1<<10 || opts.MaxBackoff <= 0 {
		errs = append(errs, fmt.Errorf("uploader: flush interval %s, flush bytes %d, max backoff %s: want positive values (flush bytes at least 1 KiB)", opts.FlushInterval, opts.FlushBytes, opts.MaxBackoff))
	}
	if opts.MaxInFlight < 1 {
		errs = append(errs, fmt.Errorf("uploader: max in flight %d: want at least 1", opts.MaxInFlight))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return &Uploader{opts: opts, log: opts.Logger.With(zap.String("component", "uploader"), zap.String("store", opts.Store.String())),
		stop: make(chan struct{}), done: make(chan struct{})}, nil
}

// Start runs the upload loop until Stop. Without Start, Stop only
// flushes.
func (u *Uploader) Start() { u.started.Store(true); go u.loop() }

// Stop ends the loop, then uploads whatever remains (the SIGTERM flush)
// until ctx ends. Safe to call twice.
func (u *Uploader) Stop(ctx context.Context) error {
	u.once.Do(func() {
		close(u.stop)
		if u.started.Load() {
			select {
			case <-u.done:
			case <-u.opts.Journal.failedC: // the loop may be parked by the failure for good
			}
		}
		u.stopErr = u.Flush(ctx)
	})
	return u.stopErr
}

// loop wakes every second and uploads when FlushBytes wait or
// FlushInterval has passed with anything waiting; after a failure it waits
// a backoff that doubles up to MaxBackoff.
func (u *Uploader) loop() {
	defer close(u.done)
	tick := time.NewTicker(min(time.Second, u.opts.FlushInterval))
	defer tick.Stop()
	last := time.Now()
	var backoff time.Duration
	var retryAt time.Time
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { <-u.stop; cancel() }()
	for {
		select {
		case <-u.stop:
			return
		case <-tick.C:
		}
		waiting := u.opts.Journal.BacklogBytes()
		due := waiting >= u.dueBytes() || (time.Since(last) >= u.opts.FlushInterval && u.pending())
		if !due || time.Now().Before(retryAt) {
			continue
		}
		actx, cancel := context.WithTimeout(ctx, u.opts.AttemptTimeout)
		err := u.Flush(actx)
		cancel()
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			backoff = min(max(2*backoff, time.Second), u.opts.MaxBackoff)
			retryAt = time.Now().Add(backoff)
			u.log.Warn("upload failed; the journal keeps everything and the upload is retried", zap.Error(err),
				zap.Duration("retry_in", backoff), zap.Int64("backlog_bytes", u.opts.Journal.BacklogBytes()))
			continue
		}
		backoff, last = 0, time.Now()
	}
}

// dueBytes is the journal backlog at which the loop uploads: about
// FlushBytes once stored, judged by how much the last segment's batches
// shrank (compressible data waits for up to 4×FlushBytes), but never
// more than half of the journal's MaxBacklogBytes, nor less than
// FlushBytes. Uploading at FlushBytes of journaled bytes made segments
// of compressible data a quarter of the size asked for.
func (u *Uploader) dueBytes() int64 {
	due := int64(u.opts.FlushBytes)
	if r := math.Float64frombits(u.ratio.Load()); r > 0 && r < 1 {
		due = int64(float64(due) / max(r, 0.25))
	}
	if m := u.opts.Journal.opts.MaxBacklogBytes; m > 0 {
		due = min(due, m/2)
	}
	return max(due, int64(u.opts.FlushBytes))
}

// pending reports whether anything (batches or events) waits in the
// journal.
func (u *Uploader) pending() bool {
	if u.opts.Journal.BacklogBytes() > 0 {
		return true
	}
	any := false
	u.opts.Journal.Events(func(*Event) error { any = true; return errStop })
	return any
}

// Flush uploads everything journaled now, in segments of about FlushBytes.
// It is the loop's step; tests and shutdown call it directly.
//
// Building a segment (reading the journal, compressing, encrypting,
// hashing) takes CPU and PUTting one takes the network and the store, so
// Flush does both at once: up to MaxInFlight segments are built ahead,
// under consecutive upload numbers, and PUT (each segment, then its index)
// at the same time, and uploads are recorded in the journal in number
// order. Nothing else changes: the journal forgets a segment's entries
// only once the store has confirmed the segment and its index, in the
// synced batch that records the next upload number. If a PUT fails, the
// flush ends with the error and keeps what it built: the next flush PUTs
// the same bytes again under the same numbers, so an upload that went
// through after one that failed is recorded, not repeated. If an upload
// number is taken by an earlier run's object, the uploads after it that
// went through are recorded, and the taken one's entries are built again
// under the next free number, one segment at a time from then on.
func (u *Uploader) Flush(ctx context.Context) error {
	u.flushMu.Lock()
	defer u.flushMu.Unlock()
	f := &flushRun{u: u, ctx: ctx, queue: u.queue, cur: u.cur, resumed: len(u.queue) > 0}
	u.queue, u.cur = nil, fillCursor{}
	if !f.resumed {
		f.cur = fillCursor{}
	}
	for {
		done, err := f.step()
		if err != nil {
			if errors.Is(err, ErrClosed) || u.opts.Journal.failed.Load() != nil {
				f.abandon()
			}
			u.queue, u.cur = f.queue, f.cur // tried again by the next flush
			u.stats.failures.Add(1)
			u.stats.consec.Add(1)
			u.stats.mu.Lock()
			u.stats.lastErr = err
			u.stats.mu.Unlock()
			return err
		}
		if done {
			u.stats.consec.Store(0)
			return nil
		}
	}
}

// built is a segment and its index, built from the journal and not yet
// uploaded.
type built struct {
	seq        uint64
	seg, idx   []byte
	sha256     [32]byte // of seg
	keys       [][]byte // the journal entries it carries
	batchBytes int64
	buf        *segBuf
	from       fillCursor // where its fill began
}

// flushRun is one Flush: what it has built and is uploading.
type flushRun struct {
	u   *Uploader
	ctx context.Context
	// cur is where the next build takes from the journal.
	cur fillCursor
	// queue is the segments built and not yet recorded, in upload
	// number order.
	queue []inflight
	// exhausted: the journal had nothing more when last asked.
	exhausted bool
	// oneByOne: an upload number was taken; PUT one segment at a time.
	oneByOne bool
	// resumed: the run took over what a failed one built, and cur with
	// it; once that is recorded and the journal drained from cur, it
	// goes through the journal again from the start for what was
	// committed behind cur.
	resumed bool
}

type inflight struct {
	b   *built
	res chan putResult  // its PUTs' outcome; nil until they start
	ctx context.Context // of the flush that started them
}

// limit is how many segments may be PUT at once. The first upload of an
// Uploader goes alone: if the process crashed with uploads unrecorded,
// their numbers are taken, and so would be the numbers after.
func (f *flushRun) limit() int {
	if f.oneByOne || !f.u.proven {
		return 1
	}
	return f.u.opts.MaxInFlight
}

// step builds a segment, if fewer than max(limit, 2) are queued and the
// journal has more, and starts PUTs up to the limit; once the queue is
// full (or the journal drained) it waits for the oldest upload and
// records it. It reports done once everything built is recorded and the
// journal had no more.
func (f *flushRun) step() (done bool, err error) {
	u, j := f.u, f.u.opts.Journal
	if !j.lockUploads() {
		return false, *j.failed.Load()
	}
	defer j.unlockUploads()
	if j.closedForUpload {
		return false, ErrClosed
	}
	if errp := j.failed.Load(); errp != nil {
		// Pebble cannot write any more: an upload could not be
		// recorded, and would be repeated forever. What the journal
		// holds is uploaded after the restart.
		return false, *errp
	}
	if err := f.ctx.Err(); err != nil {
		return false, err
	}
	seq, err := j.uploadSeq()
	if err != nil {
		return false, err
	}
	if len(f.queue) > 0 && f.queue[0].b.seq != seq {
		// Uploads were recorded by another uploader of this journal
		// since these were built: build again from the journal as it is.
		f.abandon()
		f.cur = fillCursor{}
	}
	if !f.exhausted && len(f.queue) < max(f.limit(), 2) {
		// Build the next segment (a second one even when PUTs go one
		// at a time, so that building overlaps the PUT before it).
		if len(f.queue) > 0 {
			seq = f.queue[len(f.queue)-1].b.seq + 1
		}
		b, err := u.build(seq, &f.cur)
		if err != nil {
			return false, err
		}
		if b == nil {
			f.exhausted = true
		} else {
			f.queue = append(f.queue, inflight{b: b})
			f.startUploads()
			if len(f.queue) < max(f.limit(), 2) {
				return false, nil
			}
		}
	}
	if len(f.queue) == 0 {
		if f.exhausted && f.resumed {
			f.cur, f.exhausted, f.resumed = fillCursor{}, false, false
			return false, nil
		}
		return f.exhausted, nil
	}

	// Wait for the oldest upload and record it.
	var r putResult
	for {
		f.startUploads()
		if r = <-f.queue[0].res; r.err == nil || f.queue[0].ctx == f.ctx {
			break
		}
		// Its PUTs were started by an earlier flush, which gave up:
		// their failure (that flush's deadline, say) is not this one's.
		f.queue[0].res = nil
	}
	if r.err != nil {
		f.queue[0].res = nil // PUT again by the next flush
		return false, r.err
	}
	in := f.queue[0]
	f.queue = f.queue[1:]
	if r.taken {
		// An earlier run left an object under this number (it crashed
		// before recording the upload). Leave it: with its index it is
		// a copy readers recognise; without, it is not part of the
		// archive.
		u.log.Warn("upload number already used by an earlier run; taking the next", zap.Uint64("seq", in.b.seq))
		u.bufs.Put(in.b.buf)
		return false, f.afterTaken(in.b)
	}
	if err := f.record(in.b); err != nil {
		return false, err
	}
	f.startUploads()
	return false, nil
}

// afterTaken goes on after the upload of t found its number taken: the
// uploads queued after it that went through are recorded as they are
// (their numbers follow t's; nothing is uploaded twice), the rest are
// dropped, and t's entries, with those of whatever was dropped, are
// built again from where t's fill began, under the next free number.
func (f *flushRun) afterTaken(t *built) error {
	next := t.seq + 1
	for len(f.queue) > 0 && f.queue[0].res != nil {
		in := f.queue[0]
		f.queue = f.queue[1:]
		if r := <-in.res; r.err != nil || r.taken {
			f.u.bufs.Put(in.b.buf)
			break
		}
		if err := f.record(in.b); err != nil {
			f.abandon()
			return err
		}
		next++
	}
	f.abandon()
	f.cur, f.exhausted, f.oneByOne = t.from, false, true
	return f.u.opts.Journal.skipSeq(next)
}

// record deletes b's entries from the journal, which the store now holds,
// with the next upload number, and counts the upload.
func (f *flushRun) record(b *built) error {
	u := f.u
	defer u.bufs.Put(b.buf)
	if err := u.opts.Journal.markUploaded(b.keys, b.batchBytes, b.seq+1); err != nil {
		return fmt.Errorf("record upload %d in the journal: %w", b.seq, err)
	}
	u.proven = true
	u.stats.segments.Add(1)
	u.stats.objects.Add(2)
	u.stats.bytes.Add(int64(len(b.seg) + len(b.idx)))
	u.stats.batchBytes.Add(b.batchBytes)
	if b.batchBytes > 0 {
		u.ratio.Store(math.Float64bits(float64(len(b.seg)) / float64(b.batchBytes)))
	}
	u.stats.lastUpload.Store(time.Now().UnixNano())
	u.stats.consec.Store(0)
	u.log.Debug("uploaded segment", zap.Uint64("seq", b.seq), zap.Int("entries", len(b.keys)), zap.Int("bytes", len(b.seg)))
	return nil
}

// startUploads starts the PUTs of the first limit() segments queued that
// are not running.
func (f *flushRun) startUploads() {
	for i := 0; i < len(f.queue) && i < f.limit(); i++ {
		if in := &f.queue[i]; in.res == nil {
			in.res, in.ctx = make(chan putResult, 1), f.ctx
			b, res, ctx := in.b, in.res, f.ctx
			go func() { res <- f.u.upload(ctx, b) }()
		}
	}
}

// abandon drops what is queued: it waits for the uploads running (their
// goroutines talk only to the store) and records none of them. Their
// entries stay journaled.
func (f *flushRun) abandon() {
	for _, in := range f.queue {
		if in.res != nil {
			<-in.res
		}
		f.u.bufs.Put(in.b.buf)
	}
	f.queue = nil
}

// build fills a segment numbered seq from the journal, from cur on, and
// moves cur past what it took; nil if there was nothing to take.
func (u *Uploader) build(seq uint64, cur *fillCursor) (*built, error) {
	sb := newSegmentBuilder(u.opts.WriterID, seq, u.opts.Key)
	sb.setBlockTarget(u.opts.FlushBytes)
	sb.parallelBlocks(runtime.GOMAXPROCS(0))
	buf := u.getBuf()
	sb.useBuffers(buf.seg[:0], buf.scratch[:0])
	from := *cur
	keys, batchBytes, err := u.opts.Journal.fill(sb, u.opts.FlushBytes, cur)
	if err != nil || len(keys) == 0 {
		u.bufs.Put(buf)
		if err != nil {
			err = fmt.Errorf("read journal: %w", err)
		}
		return nil, err
	}
	seg, idx := sb.finish()
	buf.seg, buf.scratch = seg, sb.scratch // keep what they grew to
	return &built{seq: seq, seg: seg, idx: idx, sha256: sb.idx.SegSHA256, keys: keys, batchBytes: batchBytes, buf: buf, from: from}, nil
}

// putResult is how an upload went: taken means its segment's number holds
// another segment already.
type putResult struct {
	taken bool
	err   error
}

// upload PUTs b's segment, then its index. It talks only to the store:
// Flush records the upload in the journal.
func (u *Uploader) upload(ctx context.Context, b *built) putResult {
	segKey, idxKey := SegmentKey(u.opts.WriterID, b.seq), IndexKey(u.opts.WriterID, b.seq)
	taken, err := putNewReader(ctx, u.opts.Store, segKey, b.seg, &HashedReader{Reader: bytes.NewReader(b.seg), SHA256: b.sha256})
	if err != nil || taken {
		return putResult{taken, err}
	}
	if taken, err = u.putNew(ctx, idxKey, b.idx); err != nil {
		return putResult{err: err}
	}
	if taken {
		// An index of an earlier attempt at this upload (whose answer
		// was lost, or whose run crashed before recording it) differs
		// only in its creation time: it describes this very segment.
		if ok, err := u.indexOf(ctx, idxKey, segKey, b); err != nil {
			return putResult{err: err}
		} else if !ok {
			return putResult{err: fmt.Errorf("index %s exists with other content although its segment matched: is another proxy using writer id %s?", idxKey, u.opts.WriterID)}
		}
	}
	return putResult{}
}

// indexOf reports whether the index stored under idxKey describes b's
// segment, stored under segKey.
func (u *Uploader) indexOf(ctx context.Context, idxKey, segKey string, b *built) (bool, error) {
	rc, err := u.opts.Store.Get(ctx, idxKey)
	if err != nil {
		return false, fmt.Errorf("read back %s: %w", idxKey, err)
	}
	defer rc.Close()
	raw, err := io.ReadAll(rc)
	if err != nil {
		return false, fmt.Errorf("read back %s: %w", idxKey, err)
	}
	ix, err := decodeIndex(idxKey, raw, u.opts.Key)
	if err != nil {
		return false, nil
	}
	return ix.Segment == segKey && ix.SegSize == int64(len(b.seg)) && ix.SegSHA256 == b.sha256, nil
}

// segBuf holds the buffers of one segment being built and uploaded.
type segBuf struct{ seg, scratch []byte }

// getBuf returns a pooled segment buffer, or a new one with room for a
// segment of FlushBytes plus its last block: a segment built by append
// into a growing buffer costs the copies of every doubling, and a fresh
// buffer of tens of megabytes is zeroed by the runtime.
func (u *Uploader) getBuf() *segBuf {
	if b, ok := u.bufs.Get().(*segBuf); ok {
		return b
	}
	return &segBuf{seg: make([]byte, 0, u.opts.FlushBytes+blockTarget+64<<10)}
}

// putNew writes a new object. If the key exists with the same bytes (a
// retry of a PUT whose answer was lost) it counts as written; with other
// bytes it reports taken.
func (u *Uploader) putNew(ctx context.Context, key string, b []byte) (taken bool, err error) {
	return putNew(ctx, u.opts.Store, key, b)
}

// HashedReader reads bytes whose SHA-256 is known. The uploader hands a
// segment to Store.Put as one, with the SHA-256 it computed for the
// index, so that a store that sends a payload hash (S3's signed payload
// over plain HTTP) need not hash the bytes again. A store may ignore it.
type HashedReader struct {
	*bytes.Reader
	SHA256 [32]byte
}

// putNew is Uploader.putNew on any store (SegmentWriter uses it too).
func putNew(ctx context.Context, store Store, key string, b []byte) (taken bool, err error) {
	return putNewReader(ctx, store, key, b, bytes.NewReader(b))
}

// putNewReader is putNew with the reader of b to hand Store.Put.
func putNewReader(ctx context.Context, store Store, key string, b []byte, r io.Reader) (taken bool, err error) {
	err = store.Put(ctx, key, r, int64(len(b)))
	if err == nil {
		return false, nil
	}
	if !errors.Is(err, ErrExists) {
		return false, fmt.Errorf("upload %s: %w", key, err)
	}
	rc, err := store.Get(ctx, key)
	if err != nil {
		return false, fmt.Errorf("read back %s: %w", key, err)
	}
	defer rc.Close()
	h := sha256.New()
	if _, err := io.Copy(h, rc); err != nil {
		return false, fmt.Errorf("read back %s: %w", key, err)
	}
	return !bytes.Equal(h.Sum(nil), sha256Sum(b)), nil
}

func sha256Sum(b []byte) []byte { s := sha256.Sum256(b); return s[:] }

// Stats returns the uploader's counters.
func (u *Uploader) Stats() UploaderStats {
	s := UploaderStats{
		Segments: u.stats.segments.Load(), Objects: u.stats.objects.Load(), Bytes: u.stats.bytes.Load(),
		BatchBytes: u.stats.batchBytes.Load(), Failures: u.stats.failures.Load(), ConsecFailure: u.stats.consec.Load(),
	}
	if t := u.stats.lastUpload.Load(); t != 0 {
		s.LastUpload = time.Unix(0, t)
	}
	u.stats.mu.Lock()
	if u.stats.lastErr != nil {
		s.LastError = u.stats.lastErr.Error()
	}
	u.stats.mu.Unlock()
	return s
}

// Health reports nil while uploads succeed, else the store's last error.
func (u *Uploader) Health() error {
	if u.stats.consec.Load() == 0 {
		return nil
	}
	u.stats.mu.Lock()
	defer u.stats.mu.Unlock()
	return fmt.Errorf("uploads to %s failing (%d in a row): %v", u.opts.Store, u.stats.consec.Load(), u.stats.lastErr)
}
