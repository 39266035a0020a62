package reliability_test

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/cockroachdb/pebble/v2/vfs/errorfs"
	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/amber-kafka/amber/archive"
	"github.com/amber-kafka/amber/archive/file"
	"github.com/amber-kafka/amber/internal/testkit"
)

// readOnlyFS fails every operation that changes the filesystem with EROFS
// once set, as a journal volume the kernel remounted read-only after an
// I/O error does. (chmod cannot do it: the tests run as root.)
func readOnlyFS(set *atomic.Bool) vfs.FS {
	return errorfs.Wrap(vfs.Default, errorfs.InjectorFunc(func(op errorfs.Op) error {
		if !set.Load() || op.Kind.ReadOrWrite() != errorfs.OpIsWrite || op.Kind == errorfs.OpFileClose || op.Kind == errorfs.OpLock {
			return nil
		}
		return &os.PathError{Op: "write", Path: op.Path, Err: syscall.EROFS}
	}))
}

// TestJournalTurnsReadOnly makes the journal's filesystem read-only while
// an idempotent producer streams through the proxy in sync mode. The proxy
// must keep serving; the journal must say it failed and refuse appends
// (the records acknowledged from then on are holes); a restart on a
// healthy disk must upload everything the journal held, so that every
// record acknowledged before the failure is archived by the proxy; a
// backfill then fills the holes and the archive equals the cluster.
func TestJournalTurnsReadOnly(t *testing.T) {
	c := testkit.NewCluster(t, kfake.SeedTopics(3, "ro"))
	store, err := file.New(filepath.Join(t.TempDir(), "archive"))
	if err != nil {
		t.Fatal(err)
	}
	var ro atomic.Bool
	data := t.TempDir()
	// A long flush interval keeps acknowledged records in the journal
	// when it fails: the restart must upload them.
	n := startNode(t, nodeOptions{Upstreams: c.ListenAddrs(), Store: store, Dir: data, JournalFS: readOnlyFS(&ro),
		FlushInterval: time.Hour, FlushBytes: 64 << 20, SyncTimeout: 500 * time.Millisecond})
	s := startStream(t, []string{n.Addr()}, "ro", "ro", 8)
	s.waitAcks(t, 500, 30*time.Second)
	before := s.acks.snapshot()
	ro.Store(true)
	waitFor(t, 10*time.Second, "the journal to report the failure", func() bool { return n.j.Health() != nil })
	health := n.j.Health()
	at := s.acks.len()
	s.progress(t, 500, 30*time.Second) // the proxy keeps serving
	if errs := s.finish(); len(errs) > 0 {
		t.Fatalf("%d produce errors after the journal failed, first: %v", len(errs), errs[0])
	}
	after := s.acks.len() - at
	ts := n.tee.Stats()
	if !errors.Is(health, archive.ErrFailed) {
		t.Errorf("journal health %v, want ErrFailed", health)
	}
	if _, err := n.j.Append([]archive.Batch{{Topic: "ro", Data: testkit.RecordBatch([]byte("k"), []byte("v"))}}, nil); err == nil {
		t.Error("a failed journal accepts appends")
	}
	if ts.Dropped == 0 {
		t.Errorf("the tee counted no dropped batch: %+v", ts)
	}
	stopErr := n.stop()
	if stopErr == nil {
		t.Error("stop reports no error with a failed journal")
	}

	// The operator fixes the disk and restarts the proxy: in this process
	// the failed Pebble keeps its lock, so the restart runs on a copy of
	// the data directory as the disk holds it.
	restarted := filepath.Join(t.TempDir(), "data")
	if out, err := exec.Command("cp", "-a", data, restarted).CombinedOutput(); err != nil {
		t.Fatalf("copy data directory: %v %s", err, out)
	}
	os.Remove(filepath.Join(restarted, "journal", "LOCK"))
	n2 := startNode(t, nodeOptions{Upstreams: c.ListenAddrs(), Store: store, Dir: restarted})
	if n2.writerID != n.writerID {
		t.Fatalf("writer id %s after the restart, was %s", n2.writerID, n.writerID)
	}
	if err := n2.stop(); err != nil {
		t.Fatalf("stop after restart: %v", err)
	}
	t.Logf("RESULT journal read-only: health %q; %d records acknowledged after the failure (holes), tee dropped %d batches, stop said %v",
		health, after, ts.Dropped, stopErr)
	v := checkArchive(t, check{Store: store, Cluster: c.ListenAddrs(), Topics: []string{"ro"}, MustHold: before, Backfill: true})
	if v.MissingBefore == 0 || v.Backfilled == 0 {
		t.Error("nothing missing before the backfill: the journal did not fail")
	}
}

// TestCrashInAsyncMode: in async durability a produce response does not
// wait for the journal, so a crash loses what was acknowledged and not yet
// on disk: the weaker promise OPERATIONS.md describes. The journal's
// fsyncs are slowed (200 ms each) so that acknowledgements run ahead of
// the disk, then the process "dies": from that instant no write reaches
// the journal's files. A restart on what the disk holds uploads it; the
// acknowledged records that never reached the disk are missing (holes
// and a tail), a backfill fetches them, and the archive equals the
// cluster.
func TestCrashInAsyncMode(t *testing.T) {
	c := testkit.NewCluster(t, kfake.SeedTopics(3, "async"))
	store, err := file.New(filepath.Join(t.TempDir(), "archive"))
	if err != nil {
		t.Fatal(err)
	}
	var slow, dead atomic.Bool
	fs := errorfs.Wrap(vfs.Default, errorfs.InjectorFunc(func(op errorfs.Op) error {
		if op.Kind.ReadOrWrite() != errorfs.OpIsWrite || op.Kind == errorfs.OpFileClose || op.Kind == errorfs.OpLock {
			return nil
		}
		if dead.Load() {
			return &os.PathError{Op: "write", Path: op.Path, Err: syscall.EIO}
		}
		if slow.Load() && (op.Kind == errorfs.OpFileSync || op.Kind == errorfs.OpFileSyncData) {
			time.Sleep(200 * time.Millisecond)
		}
		return nil
	}))
	data := t.TempDir()
	n := startNode(t, nodeOptions{Upstreams: c.ListenAddrs(), Store: store, Dir: data, JournalFS: fs, Durability: archive.Async,
		FlushInterval: time.Hour, FlushBytes: 64 << 20})
	s := startStream(t, []string{n.Addr()}, "async", "async", 16)
	s.waitAcks(t, 300, 30*time.Second)
	slow.Store(true)
	s.progress(t, 1000, 30*time.Second)
	dead.Store(true) // the crash: nothing more reaches the disk
	acked := s.acks.len()
	s.finish()
	n.stop()

	restarted := filepath.Join(t.TempDir(), "data")
	if out, err := exec.Command("cp", "-a", data, restarted).CombinedOutput(); err != nil {
		t.Fatalf("copy data directory: %v %s", err, out)
	}
	os.Remove(filepath.Join(restarted, "journal", "LOCK"))
	if err := startNode(t, nodeOptions{Upstreams: c.ListenAddrs(), Store: store, Dir: restarted}).stop(); err != nil {
		t.Fatalf("restart: %v", err)
	}
	t.Logf("RESULT crash in async mode: %d records acknowledged before the crash with fsyncs taking 200 ms", acked)
	v := checkArchive(t, check{Store: store, Cluster: c.ListenAddrs(), Topics: []string{"async"}, Backfill: true})
	if v.MissingBefore == 0 {
		t.Error("nothing was missing after the crash: acknowledgements did not run ahead of the disk")
	}
}
