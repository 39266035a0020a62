package archive

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"
)

// Defaults for UploaderOptions.
const (
	DefaultFlushInterval = 10 * time.Second
	DefaultFlushBytes    = 32 << 20
	DefaultMaxBackoff    = time.Minute
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
	// FlushBytes: upload as soon as this much waits; also the target
	// segment size. Default DefaultFlushBytes (32 MiB).
	FlushBytes int
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
		due := waiting >= int64(u.opts.FlushBytes) || (time.Since(last) >= u.opts.FlushInterval && u.pending())
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
func (u *Uploader) Flush(ctx context.Context) error {
	var cur fillCursor
	for {
		n, err := u.uploadOne(ctx, &cur)
		if err != nil {
			u.stats.failures.Add(1)
			u.stats.consec.Add(1)
			u.stats.mu.Lock()
			u.stats.lastErr = err
			u.stats.mu.Unlock()
			return err
		}
		if n == 0 {
			return nil
		}
	}
}

// uploadOne uploads one segment, of what is journaled from cur on, and
// returns how many journal entries it carried (0: nothing to do).
func (u *Uploader) uploadOne(ctx context.Context, cur *fillCursor) (int, error) {
	j := u.opts.Journal
	if !j.lockUploads() {
		return 0, *j.failed.Load()
	}
	defer j.unlockUploads()
	if j.closedForUpload {
		return 0, ErrClosed
	}
	if errp := j.failed.Load(); errp != nil {
		// Pebble cannot write any more: an upload could not be
		// recorded, and would be repeated forever. What the journal
		// holds is uploaded after the restart.
		return 0, *errp
	}
	for {
		seq, err := j.uploadSeq()
		if err != nil {
			return 0, err
		}
		sb := newSegmentBuilder(u.opts.WriterID, seq, u.opts.Key)
		sb.setBlockTarget(u.opts.FlushBytes)
		buf := u.getBuf()
		defer u.bufs.Put(buf)
		sb.useBuffers(buf.seg[:0], buf.scratch[:0])
		from := *cur
		keys, batchBytes, err := j.fill(sb, u.opts.FlushBytes, cur)
		if err != nil {
			return 0, fmt.Errorf("read journal: %w", err)
		}
		if len(keys) == 0 {
			u.stats.consec.Store(0)
			return 0, nil
		}
		seg, idx := sb.finish()
		buf.seg, buf.scratch = seg, sb.scratch // keep what they grew to
		taken, err := u.putNew(ctx, SegmentKey(u.opts.WriterID, seq), seg)
		if err != nil {
			return 0, err
		}
		if taken {
			// An earlier run left an object under this number (it
			// crashed before recording the upload). Leave it: with its
			// index it is a copy readers recognise; without, it is not
			// part of the archive. Take the next number.
			u.log.Warn("upload number already used by an earlier run; taking the next", zap.Uint64("seq", seq))
			if err := j.skipSeq(seq + 1); err != nil {
				return 0, err
			}
			*cur = from
			continue
		}
		if taken, err = u.putNew(ctx, IndexKey(u.opts.WriterID, seq), idx); err != nil {
			return 0, err
		}
		if taken {
			return 0, fmt.Errorf("index %s exists with other content although its segment matched: is another proxy using writer id %s?", IndexKey(u.opts.WriterID, seq), u.opts.WriterID)
		}
		if err := j.markUploaded(keys, batchBytes, seq+1); err != nil {
			return 0, fmt.Errorf("record upload %d in the journal: %w", seq, err)
		}
		u.stats.segments.Add(1)
		u.stats.objects.Add(2)
		u.stats.bytes.Add(int64(len(seg) + len(idx)))
		u.stats.batchBytes.Add(batchBytes)
		u.stats.lastUpload.Store(time.Now().UnixNano())
		u.stats.consec.Store(0)
		u.log.Debug("uploaded segment", zap.Uint64("seq", seq), zap.Int("entries", len(keys)), zap.Int("bytes", len(seg)))
		return len(keys), nil
	}
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

// putNew is Uploader.putNew on any store (SegmentWriter uses it too).
func putNew(ctx context.Context, store Store, key string, b []byte) (taken bool, err error) {
	err = store.Put(ctx, key, bytes.NewReader(b), int64(len(b)))
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
