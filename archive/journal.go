package archive

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"
	"go.uber.org/zap"
)

// Defaults for JournalOptions.
const (
	DefaultMaxPendingBytes = 256 << 20
	DefaultStallAfter      = 5 * time.Second
	DefaultCoalesceDelay   = 5 * time.Millisecond
	DefaultCoalesceBytes   = 4 << 20
	DefaultSpareLogFiles   = 2
)

// JournalOptions configures a journal.
type JournalOptions struct {
	// Dir is the journal's directory. Required.
	Dir string
	// FS is the filesystem. Default vfs.Default; tests inject faults.
	FS vfs.FS
	// MaxPendingBytes bounds what may wait to be committed; past it
	// Append refuses (ErrBacklogFull) rather than let memory grow while a
	// disk is stalled. Default DefaultMaxPendingBytes (256 MiB).
	MaxPendingBytes int64
	// MaxBacklogBytes bounds the batches journaled but not yet uploaded
	// to the archive; past it Append refuses new batches (they become
	// holes for the backfiller) rather than fill the disk while the
	// object store is down. 0: no bound.
	MaxBacklogBytes int64
	// StallAfter is how long a commit may run before Health reports the
	// journal stalled. Default DefaultStallAfter.
	StallAfter time.Duration
	// CoalesceDelay and CoalesceBytes bound how long AppendNoWait appends
	// (async durability) wait for company before the writer commits them:
	// up to CoalesceDelay, or until CoalesceBytes are pending. An Append
	// whose caller waits is committed at once with all of them. Defaults
	// DefaultCoalesceDelay (5 ms) and DefaultCoalesceBytes (4 MiB).
	CoalesceDelay time.Duration
	CoalesceBytes int
	// SyncCommitDelay is how long the writer waits, once an Append whose
	// caller waits arrives, for more before committing (MySQL's
	// binlog_group_commit_sync_delay): fewer, larger fsyncs, each waiting
	// response that much later. Default 0: commit at once.
	// docs/BENCHMARKS-ARCHIVE.md measures 200 µs.
	SyncCommitDelay time.Duration
	// SpareLogFiles is how many batch log files (up to 64 MiB each) whose
	// batches are all uploaded are kept to be reused as later files
	// instead of removed: overwriting a file's blocks makes each fsync
	// cheaper than appending to a new file does (journal_log.go).
	// Default DefaultSpareLogFiles (2); negative: none.
	SpareLogFiles int
	// ReadOnly opens an existing journal for reading only (amber ls).
	ReadOnly bool
	// Logger receives the journal's and Pebble's logs. Default nop.
	Logger *zap.Logger
}

// EnsureDefaults fills zero fields.
func (o *JournalOptions) EnsureDefaults() *JournalOptions {
	if o.FS == nil {
		o.FS = vfs.Default
	}
	if o.MaxPendingBytes == 0 {
		o.MaxPendingBytes = DefaultMaxPendingBytes
	}
	if o.StallAfter == 0 {
		o.StallAfter = DefaultStallAfter
	}
	if o.CoalesceDelay == 0 {
		o.CoalesceDelay = DefaultCoalesceDelay
	}
	if o.CoalesceBytes == 0 {
		o.CoalesceBytes = DefaultCoalesceBytes
	}
	if o.SpareLogFiles == 0 {
		o.SpareLogFiles = DefaultSpareLogFiles
	}
	if o.Logger == nil {
		o.Logger = zap.NewNop()
	}
	return o
}

// Validate reports every problem at once.
func (o *JournalOptions) Validate() error {
	var errs []error
	if o.Dir == "" {
		errs = append(errs, errors.New("journal: no directory"))
	}
	if o.MaxPendingBytes < 1<<20 {
		errs = append(errs, fmt.Errorf("journal: max pending bytes %d below 1 MiB", o.MaxPendingBytes))
	}
	if o.StallAfter <= 0 {
		errs = append(errs, fmt.Errorf("journal: stall-after %s not positive", o.StallAfter))
	}
	if o.CoalesceDelay < 0 || o.CoalesceBytes < 0 {
		errs = append(errs, fmt.Errorf("journal: coalesce delay %s and bytes %d must not be negative", o.CoalesceDelay, o.CoalesceBytes))
	}
	if o.SyncCommitDelay < 0 || o.SyncCommitDelay > time.Second {
		errs = append(errs, fmt.Errorf("journal: sync commit delay %s: want 0 to 1s (a few hundred µs at most makes sense)", o.SyncCommitDelay))
	}
	return errors.Join(errs...)
}

// Batch is one produced record batch as the broker acknowledged it.
type Batch struct {
	Topic      string
	Partition  int32
	BaseOffset int64 // the offset the broker assigned to the first record
	// AckTime is when the broker's acknowledgement reached the proxy.
	AckTime time.Time
	// LogAppendTime is the broker's append time in Unix ms for
	// LogAppendTime topics, else -1.
	LogAppendTime int64
	ClientID      string
	// Data is the v2 record batch as the client sent it (FirstOffset 0).
	Data []byte
}

// Event is a commit, transaction outcome or admin change.
type Event struct {
	Seq      uint64 // assigned by the journal, increasing
	Time     time.Time
	Kind     string // one of the Kind constants
	ClientID string
	Body     json.RawMessage
}

// JournalStats are cumulative counters.
type JournalStats struct {
	Batches       int64 // batches committed
	BatchBytes    int64 // their bytes
	Duplicates    int64 // batches already journaled (idempotent retries)
	Events        int64 // events committed
	Commits       int64 // group commits (each one fsync)
	CommitErrors  int64 // failed group commits; their entries are lost
	Refused       int64 // appends refused: backlog full, failed or closed
	PendingBytes  int64 // bytes waiting to be committed now
	CommitNanos   int64 // total time in commits
	LastCommitErr string
}

// Journal is the proxy's local, append-only, fsynced store of what it
// tees. Appends from any goroutine are queued and committed together by
// one writer goroutine: the record batches appended to the batch log with
// one write and one fdatasync, their pointers and the events in one Pebble
// batch — a group commit across every connection (journal_log.go).
type Journal struct {
	opts    JournalOptions
	log     *zap.Logger
	db      *pebble.DB
	blog    *batchLog
	fillBuf []byte // the uploader's read buffer (held with uploadSem)
	// overlay, for a read-only journal only, points at records a crash
	// left in the batch log without a pointer in Pebble; readers see the
	// database through it. A writable journal commits them at open.
	overlay *pebble.Batch

	wake chan struct{} // 1-slot: something is pending
	stop chan struct{}
	done chan struct{}

	failed      atomic.Pointer[error] // set once by a fatal store error
	failedC     chan struct{}         // closed when failed is set
	commitStart atomic.Int64          // unix ns of the running commit, 0 if none

	mu struct {
		sync.Mutex
		batches []Batch
		events  []Event
		bytes   int64
		// lazy is the bytes appended by AppendNoWait since the last
		// commit: nobody waits for them, so the loop lets them gather.
		lazy    int64
		waiters []chan error
		// releases give back lent batch data (AppendLent) once the
		// commit holding it is done.
		releases []func()
		closed   bool
		lastErr  error
	}

	// commitReq asks the writer goroutine (loop), the only one that
	// commits, to commit now and answer; nextSeq, the next event
	// sequence, is the loop's. A goroutine that meets a fatal Pebble
	// error is parked for good (see pebbleLogger): only the loop commits
	// so that it is never a caller of Commit.
	commitReq chan chan error
	nextSeq   uint64
	// highest is, per partition, the highest base offset journaled since
	// open (seeded from the journal at open). The loop alone reads and
	// writes it. A batch above it is new: offsets only grow, so only a
	// batch at or below it (an idempotent retry, or a batch whose response
	// overtook an earlier one's on another connection) needs the Pebble
	// lookup that finds a duplicate.
	highest map[tp]int64

	// backlog is the bytes of batches journaled and not yet uploaded;
	// uploadSem (one slot) serialises uploads (Uploader) against each
	// other and against Close. It is a channel, not a mutex, because an
	// upload's Pebble write may park its goroutine holding it: waiters
	// give up when failedC closes.
	backlog         atomic.Int64
	uploadSem       chan struct{}
	closedForUpload bool // while holding uploadSem: Close has begun

	stats struct {
		batches, batchBytes, duplicates, events, commits, commitErrors, refused, commitNanos atomic.Int64
	}

	// topics is what the journal keeps about topics themselves
	// (births.go): each deleted topic's last deletion, and each topic's
	// current id. The loop writes them; backfills and tees read them.
	topics struct {
		sync.Mutex
		births map[string]time.Time
		ids    map[string]string // topic name → hex id (TopicIDs)
	}
}

// OpenJournal opens (creating unless ReadOnly) the journal in opts.Dir,
// recovering whatever a crash left, and starts its writer goroutine.
func OpenJournal(opts JournalOptions) (*Journal, error) {
	opts.EnsureDefaults()
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	j := &Journal{
		opts:      opts,
		log:       opts.Logger.With(zap.String("component", "journal")),
		wake:      make(chan struct{}, 1),
		stop:      make(chan struct{}),
		done:      make(chan struct{}),
		failedC:   make(chan struct{}),
		commitReq: make(chan chan error),
		uploadSem: make(chan struct{}, 1),
		highest:   make(map[tp]int64),
	}
	popts := &pebble.Options{
		FS:                 opts.FS,
		ReadOnly:           opts.ReadOnly,
		ErrorIfNotExists:   opts.ReadOnly,
		Logger:             pebbleLogger{j: j, log: j.log.Sugar()},
		MemTableSize:       16 << 20, // keys, pointers and events: the batches are in the batch log
		BytesPerSync:       1 << 20,
		FormatMajorVersion: pebble.FormatNewest,
		EventListener: &pebble.EventListener{
			BackgroundError: func(err error) { j.log.Error("journal background error", zap.Error(err)) },
			WriteStallBegin: func(info pebble.WriteStallBeginInfo) {
				j.log.Warn("journal write stall: the disk is not keeping up", zap.String("reason", info.Reason))
			},
		},
	}
	db, err := pebble.Open(opts.Dir, popts)
	if err != nil {
		if isLockErr(err) {
			return nil, fmt.Errorf("%w: %s (a running proxy holds it; stop it or read the archive instead)", ErrInUse, opts.Dir)
		}
		return nil, fmt.Errorf("open journal %s: %w", opts.Dir, err)
	}
	j.db = db
	if err := j.checkFormat(); err != nil {
		db.Close()
		return nil, err
	}
	if j.blog, err = openBatchLog(opts.FS, opts.Dir, opts.ReadOnly, max(opts.SpareLogFiles, 0)); err != nil {
		db.Close()
		return nil, err
	}
	steps := []func() error{j.recoverLog, j.recoverSeq, j.loadBirths, j.loadTopicIDs}
	if !opts.ReadOnly {
		steps = append(steps, j.blog.startWriting)
	}
	for _, step := range steps {
		if err := step(); err != nil {
			j.blog.close()
			db.Close()
			return nil, err
		}
	}
	if opts.ReadOnly {
		close(j.done)
		return j, nil
	}
	go j.loop()
	return j, nil
}

func isLockErr(err error) bool {
	s := err.Error()
	return strings.Contains(s, "resource temporarily unavailable") || strings.Contains(s, "lock held")
}

// BacklogBytes is the bytes of batches journaled and not yet uploaded.
func (j *Journal) BacklogBytes() int64 { return j.backlog.Load() }

// Append queues batches and events for the next group commit and returns
// a channel that receives the commit's outcome. It never blocks: with more
// than MaxPendingBytes waiting, or a failed or closed journal, it refuses.
// Batch data is copied into the commit only when it runs, so callers must
// not reuse it until the channel delivers.
func (j *Journal) Append(batches []Batch, events []Event) (<-chan error, error) {
	return j.AppendLent(batches, events, nil)
}

// AppendLent is Append for batch data the caller lends rather than gives:
// the journal calls release once it no longer reads the data (after the
// commit that holds it, whatever its outcome), and the caller may reuse
// the data then. If it refuses, release is not called. The tee lends the
// proxy's request buffers this way instead of copying every batch.
func (j *Journal) AppendLent(batches []Batch, events []Event, release func()) (<-chan error, error) {
	ch := make(chan error, 1)
	if err := j.append(batches, events, ch, release); err != nil {
		return nil, err
	}
	return ch, nil
}

// AppendNoWait is Append for a caller that does not wait for the commit
// (async durability, events): nobody is told the outcome, a failure is
// counted and logged, and the writer lets such appends gather for up to
// CoalesceDelay or CoalesceBytes so that it fsyncs far less often than it
// is woken. The batches' data must not be reused afterwards.
func (j *Journal) AppendNoWait(batches []Batch, events []Event) error {
	return j.append(batches, events, nil, nil)
}

// AppendNoWaitLent is AppendNoWait with the data lent (AppendLent).
func (j *Journal) AppendNoWaitLent(batches []Batch, events []Event, release func()) error {
	return j.append(batches, events, nil, release)
}

func (j *Journal) append(batches []Batch, events []Event, ch chan error, release func()) error {
	if errp := j.failed.Load(); errp != nil {
		j.stats.refused.Add(1)
		return *errp
	}
	if max := j.opts.MaxBacklogBytes; max > 0 && len(batches) > 0 && j.backlog.Load() >= max {
		j.stats.refused.Add(1)
		return fmt.Errorf("%w: %d bytes wait for upload, the cap is %d: the object store is down or slow", ErrBacklogFull, j.backlog.Load(), max)
	}
	var size int64
	for i := range batches {
		size += int64(len(batches[i].Data) + len(batches[i].Topic) + 64)
	}
	for i := range events {
		size += int64(len(events[i].Body) + 64)
	}
	j.mu.Lock()
	switch {
	case j.mu.closed:
		j.mu.Unlock()
		j.stats.refused.Add(1)
		return ErrClosed
	case j.mu.bytes+size > j.opts.MaxPendingBytes && j.mu.bytes > 0:
		j.mu.Unlock()
		j.stats.refused.Add(1)
		return fmt.Errorf("%w: %d bytes waiting", ErrBacklogFull, j.mu.bytes)
	}
	j.mu.batches = append(j.mu.batches, batches...)
	j.mu.events = append(j.mu.events, events...)
	if release != nil {
		j.mu.releases = append(j.mu.releases, release)
	}
	j.mu.bytes += size
	if ch != nil {
		j.mu.waiters = append(j.mu.waiters, ch)
	} else {
		j.mu.lazy += size
	}
	j.mu.Unlock()
	select {
	case j.wake <- struct{}{}:
	default:
	}
	return nil
}

// loop commits whatever is pending each time it is woken or asked. When
// only AppendNoWait appends are pending, and fewer than CoalesceBytes of
// them, it waits up to CoalesceDelay for more before committing: one fsync
// per few milliseconds instead of one per produce response.
func (j *Journal) loop() {
	defer close(j.done)
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	timerSet := false
	for {
		select {
		case <-j.wake:
			if j.onlyLazy() {
				if !timerSet {
					timer.Reset(j.opts.CoalesceDelay)
					timerSet = true
				}
				continue
			}
			if d := j.opts.SyncCommitDelay; d > 0 {
				// Let the appends of other connections' responses join
				// this group: fewer, larger fsyncs for a little latency.
				time.Sleep(d)
			}
			j.commitPending()
		case <-timer.C:
			timerSet = false
			j.commitPending()
		case ch := <-j.commitReq:
			ch <- j.commitPending()
		case <-j.stop:
			j.commitPending()
			return
		}
	}
}

// onlyLazy reports whether what is pending may wait for more: no caller
// waits for it and it is below CoalesceBytes.
func (j *Journal) onlyLazy() bool {
	j.mu.Lock()
	defer j.mu.Unlock()
	return len(j.mu.waiters) == 0 && j.mu.lazy < int64(j.opts.CoalesceBytes)
}

// Commit has everything appended so far committed now and returns the
// outcome; tests call it to commit by hand, the proxy before its final
// upload. The writer goroutine commits, not the caller: a fatal Pebble
// error parks that goroutine for good, and Commit returns the failure.
func (j *Journal) Commit() error {
	ch := make(chan error, 1)
	select {
	case j.commitReq <- ch:
	case <-j.failedC:
		return j.refuseWaiting()
	case <-j.done: // closed or read-only: nothing can be pending
		return nil
	}
	select {
	case err := <-ch:
		return err
	case <-j.failedC:
		return j.refuseWaiting()
	}
}

// commitPending commits everything pending as one group (commit, in
// journal_commit.go) and tells every waiter the outcome. It is the loop's
// step.
func (j *Journal) commitPending() error {
	j.mu.Lock()
	batches, events, waiters, releases := j.mu.batches, j.mu.events, j.mu.waiters, j.mu.releases
	j.mu.batches, j.mu.events, j.mu.waiters, j.mu.releases = nil, nil, nil, nil
	j.mu.bytes, j.mu.lazy = 0, 0
	j.mu.Unlock()
	if len(batches) == 0 && len(events) == 0 {
		return nil
	}
	err := j.commit(batches, events)
	for _, r := range releases {
		r() // the commit has copied what it wrote: nothing reads the data now
	}
	for _, w := range waiters {
		w <- err
	}
	j.mu.Lock()
	j.mu.lastErr = err
	j.mu.Unlock()
	if err != nil {
		j.stats.commitErrors.Add(1)
		j.log.Error("journal commit failed: these batches are not journaled and will show as holes", zap.Int("batches", len(batches)), zap.Int("events", len(events)), zap.Error(err))
	}
	return err
}

// refuseWaiting answers every pending append with the journal's failure.
func (j *Journal) refuseWaiting() error {
	err := *j.failed.Load()
	j.mu.Lock()
	waiters, releases := j.mu.waiters, j.mu.releases
	j.mu.batches, j.mu.events, j.mu.waiters, j.mu.releases = nil, nil, nil, nil
	j.mu.bytes, j.mu.lazy = 0, 0
	j.mu.Unlock()
	for _, r := range releases {
		r()
	}
	for _, w := range waiters {
		w <- err
	}
	return err
}

// lockUploads takes uploadSem, or reports false once the journal has
// failed: an upload parked by the failure may hold it for good.
func (j *Journal) lockUploads() bool {
	select {
	case j.uploadSem <- struct{}{}:
		return true
	case <-j.failedC:
		return false
	}
}

func (j *Journal) unlockUploads() { <-j.uploadSem }

// Health returns nil while the journal works, else what is wrong: failed,
// a commit stalled past StallAfter, or the last commit's error.
func (j *Journal) Health() error {
	if errp := j.failed.Load(); errp != nil {
		return *errp
	}
	if start := j.commitStart.Load(); start != 0 {
		if d := time.Since(time.Unix(0, start)); d > j.opts.StallAfter {
			return fmt.Errorf("journal commit stalled for %s: the disk under %s is slow, full or hung", d.Round(time.Second), j.opts.Dir)
		}
	}
	if max := j.opts.MaxBacklogBytes; max > 0 && j.backlog.Load() >= max {
		return fmt.Errorf("%w: %d bytes wait for upload, the cap is %d: new batches are not journaled (holes for backfill) until the object store takes the backlog", ErrBacklogFull, j.backlog.Load(), max)
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.mu.closed {
		return ErrClosed
	}
	return j.mu.lastErr
}

// Stats returns the journal's counters.
func (j *Journal) Stats() JournalStats {
	s := JournalStats{
		Batches:      j.stats.batches.Load(),
		BatchBytes:   j.stats.batchBytes.Load(),
		Duplicates:   j.stats.duplicates.Load(),
		Events:       j.stats.events.Load(),
		Commits:      j.stats.commits.Load(),
		CommitErrors: j.stats.commitErrors.Load(),
		Refused:      j.stats.refused.Load(),
		CommitNanos:  j.stats.commitNanos.Load(),
	}
	j.mu.Lock()
	s.PendingBytes = j.mu.bytes
	if j.mu.lastErr != nil {
		s.LastCommitErr = j.mu.lastErr.Error()
	}
	j.mu.Unlock()
	return s
}

// Dir is the journal's directory.
func (j *Journal) Dir() string { return j.opts.Dir }

// Close commits what is pending and closes the store. A failed journal's
// store is abandoned, not closed: its writer may be parked inside Pebble.
// Safe to call twice, and on a nil journal (none was opened).
func (j *Journal) Close() error {
	if j == nil {
		return nil
	}
	j.mu.Lock()
	if j.mu.closed {
		j.mu.Unlock()
		return nil
	}
	j.mu.closed = true
	j.mu.Unlock()
	if j.lockUploads() { // let a running upload finish, and start no other
		j.closedForUpload = true
		j.unlockUploads()
	}
	if !j.opts.ReadOnly {
		close(j.stop)
		select {
		case <-j.done:
		case <-time.After(j.opts.StallAfter):
			if j.failed.Load() == nil {
				j.fail(fmt.Errorf("journal close: the last commit did not finish within %s", j.opts.StallAfter))
			}
		}
	}
	if errp := j.failed.Load(); errp != nil {
		return *errp
	}
	if j.overlay != nil {
		j.overlay.Close()
	}
	err := j.db.Close()
	if !j.opts.ReadOnly {
		j.blog.end()
	}
	j.blog.close()
	return err
}

// fail marks the journal failed for good: every later Append is refused and
// Health reports err until the process restarts.
func (j *Journal) fail(err error) {
	err = fmt.Errorf("%w: %v (restart the proxy once the disk under %s is fixed; holes will be backfilled)", ErrFailed, err, j.opts.Dir)
	if j.failed.CompareAndSwap(nil, &err) {
		close(j.failedC)
		j.log.Error("journal failed; the proxy keeps forwarding without it", zap.Error(err))
	}
}

// pebbleLogger routes Pebble's logs to zap. Pebble calls Fatalf where it
// cannot continue (a failed WAL write leaves its commit pipeline broken);
// its default exits the process. Here the journal is marked failed and the
// calling goroutine is parked for good instead: Pebble never runs past its
// fatal error, and the proxy keeps forwarding without a journal.
type pebbleLogger struct {
	j   *Journal
	log *zap.SugaredLogger
}

func (l pebbleLogger) Infof(format string, args ...any)  { l.log.Debugf(format, args...) }
func (l pebbleLogger) Errorf(format string, args ...any) { l.log.Errorf(format, args...) }
func (l pebbleLogger) Fatalf(format string, args ...any) {
	l.j.fail(fmt.Errorf(format, args...))
	select {}
}
