package archive_test

import (
	"errors"
	"fmt"
	"os/exec"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/cockroachdb/pebble/v2/vfs/errorfs"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/amber-kafka/amber/archive"
	"github.com/amber-kafka/amber/internal/testkit"
	"github.com/amber-kafka/amber/proxy"
)

// TestJournalWriteFailureKeepsProxying injects write errors under the
// journal mid-stream. The proxy must keep serving, the failure must show in
// Health and the tee's counters, and the journal must hold nothing that is
// not in the cluster, and everything acknowledged before the failure.
func TestJournalWriteFailureKeepsProxying(t *testing.T) {
	c := testkit.NewCluster(t, kfake.SeedTopics(1, "f"))
	dir := filepath.Join(t.TempDir(), "journal")
	var broken atomic.Bool
	fs := errorfs.Wrap(vfs.Default, errorfs.InjectorFunc(func(op errorfs.Op) error {
		if broken.Load() && op.Kind.ReadOrWrite() == errorfs.OpIsWrite {
			return errorfs.ErrInjected
		}
		return nil
	}))
	j, err := archive.OpenJournal(archive.JournalOptions{Dir: dir, FS: fs, StallAfter: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	tee := archive.NewTee(j, archive.TeeOptions{Durability: archive.Sync, SyncTimeout: 200 * time.Millisecond})
	p := testkit.StartProxy(t, proxy.Options{Upstreams: c.ListenAddrs(), Tee: tee})
	cl, err := kgo.NewClient(kgo.SeedBrokers(p.Addr()), kgo.DefaultProduceTopic("f"))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	produce := func(n int) {
		t.Helper()
		for i := 0; i < n; i++ {
			if err := cl.ProduceSync(ctx(t), &kgo.Record{Value: []byte("v")}).FirstErr(); err != nil {
				t.Fatalf("the proxy stopped serving: %v", err)
			}
		}
	}
	produce(20) // acknowledged, so journaled
	broken.Store(true)
	produce(20) // the disk is failing: the proxy keeps serving
	if err := j.Health(); err == nil {
		t.Fatal("journal reports healthy on a failing disk")
	} else {
		t.Logf("health: %v", err)
	}
	if s := tee.Stats(); s.Dropped == 0 && s.SyncTimeouts == 0 {
		t.Errorf("no dropped batches or sync timeouts counted: %+v", s)
	}
	if errors.Is(j.Health(), archive.ErrFailed) {
		if _, err := j.Append(nil, nil); err == nil {
			t.Error("a failed journal accepts appends")
		}
	}

	// What a restarted proxy would find: copy the directory as it is on
	// disk (the failed store stays locked in this process) and read it.
	cp := filepath.Join(t.TempDir(), "copy")
	if out, err := exec.Command("cp", "-r", dir, cp).CombinedOutput(); err != nil {
		t.Fatalf("copy journal: %v %s", err, out)
	}
	rj, err := archive.OpenJournal(archive.JournalOptions{Dir: cp})
	if err != nil {
		t.Fatalf("reopen the journal after the failure: %v", err)
	}
	defer rj.Close()
	e := &teed{c: c, p: p, j: rj, tee: tee}
	n, missing := compareJournal(t, e, "f", 1)
	for _, m := range missing {
		var off int
		fmt.Sscanf(m, "f/0@%d", &off)
		if off < 20 {
			t.Errorf("%s was acknowledged before the failure but is not journaled", m)
		}
	}
	if n+len(missing) != 40 {
		t.Errorf("%d journaled + %d missing, want 40 batches", n, len(missing))
	}
	t.Logf("journal holds %d of 40 batches after the disk failed; the rest are holes for backfill", n)
}
