package archive

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"
)

func openTestJournal(t *testing.T, dir string, mod func(*JournalOptions)) *Journal {
	t.Helper()
	opts := JournalOptions{Dir: dir}
	if mod != nil {
		mod(&opts)
	}
	j, err := OpenJournal(opts)
	if err != nil {
		t.Fatal(err)
	}
	return j
}

func jb(topic string, partition int32, offset int64) Batch {
	return Batch{Topic: topic, Partition: partition, BaseOffset: offset, AckTime: time.UnixMilli(1e12), LogAppendTime: -1,
		Data: fmt.Appendf(nil, "batch %s/%d@%d", topic, partition, offset)}
}

func appendWait(t *testing.T, j *Journal, batches ...Batch) {
	t.Helper()
	done, err := j.Append(batches, nil)
	if err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("commit did not answer")
	}
}

func journaled(t *testing.T, j *Journal) []string {
	t.Helper()
	var got []string
	if err := j.Batches(func(b *Batch) error {
		got = append(got, fmt.Sprintf("%s/%d@%d=%s", b.Topic, b.Partition, b.BaseOffset, b.Data))
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return got
}

// TestJournalStoresEachBatchOnce covers the duplicate check the commit
// makes only for batches not above their partition's highest offset:
// copies in one commit, in a later commit, after a reopen (the highest
// offsets come back from disk), and an older batch whose acknowledgement
// came after a newer one's, which is not a duplicate.
func TestJournalStoresEachBatchOnce(t *testing.T) {
	dir := t.TempDir()
	j := openTestJournal(t, dir, nil)
	appendWait(t, j, jb("a", 0, 0), jb("a", 0, 0), jb("a", 1, 0)) // a copy in the same commit
	appendWait(t, j, jb("a", 0, 0))                               // a retry acknowledged again
	appendWait(t, j, jb("a", 0, 20), jb("a", 0, 10))              // 10 acknowledged after 20
	appendWait(t, j, jb("a", 0, 10), jb("a", 0, 30))              // 10 again, and a new one
	if s := j.Stats(); s.Batches != 5 || s.Duplicates != 3 {
		t.Errorf("stats: %d batches, %d duplicates; want 5, 3", s.Batches, s.Duplicates)
	}
	want := []string{"a/0@0=batch a/0@0", "a/0@10=batch a/0@10", "a/0@20=batch a/0@20", "a/0@30=batch a/0@30", "a/1@0=batch a/1@0"}
	if got := journaled(t, j); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("journal holds %q, want %q", got, want)
	}
	var wantBytes int64
	for _, b := range []Batch{jb("a", 0, 0), jb("a", 0, 10), jb("a", 0, 20), jb("a", 0, 30), jb("a", 1, 0)} {
		wantBytes += int64(len(b.Data))
	}
	if got := j.BacklogBytes(); got != wantBytes {
		t.Errorf("backlog %d bytes, want %d", got, wantBytes)
	}
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}

	j = openTestJournal(t, dir, nil)
	defer j.Close()
	if got := j.BacklogBytes(); got != wantBytes {
		t.Errorf("after reopen: backlog %d bytes, want %d", got, wantBytes)
	}
	appendWait(t, j, jb("a", 0, 30), jb("a", 0, 20), jb("a", 1, 0), jb("a", 1, 5))
	if s := j.Stats(); s.Batches != 1 || s.Duplicates != 3 {
		t.Errorf("after reopen: %d batches, %d duplicates; want 1, 3", s.Batches, s.Duplicates)
	}
	if got := len(journaled(t, j)); got != 6 {
		t.Errorf("after reopen the journal holds %d batches, want 6", got)
	}
}

// TestJournalCoalescesAppendsNobodyWaitsFor: AppendNoWait appends gather
// into few commits; a waiting Append commits at once whatever the delay,
// taking them along; CoalesceBytes commits without waiting the delay.
func TestJournalCoalescesAppendsNobodyWaitsFor(t *testing.T) {
	j := openTestJournal(t, t.TempDir(), func(o *JournalOptions) { o.CoalesceDelay = 100 * time.Millisecond })
	for i := range 100 {
		if err := j.AppendNoWait([]Batch{jb("a", 0, int64(i))}, []Event{{Time: time.Now(), Kind: KindOffsetCommit, Body: []byte(`{}`)}}); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(30 * time.Second)
	for j.Stats().Batches < 100 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if s := j.Stats(); s.Batches != 100 || s.Events != 100 || s.Commits > 50 {
		t.Errorf("100 appends nobody waits for: %d batches, %d events in %d commits; want 100, 100 in far fewer than 100", s.Batches, s.Events, s.Commits)
	}
	j.Close()

	j = openTestJournal(t, t.TempDir(), func(o *JournalOptions) { o.CoalesceDelay = time.Hour; o.CoalesceBytes = 1 << 10 })
	defer j.Close()
	if err := j.AppendNoWait([]Batch{jb("a", 0, 0)}, nil); err != nil {
		t.Fatal(err)
	}
	appendWait(t, j, jb("a", 0, 1)) // would hang for an hour if it waited
	if got := len(journaled(t, j)); got != 2 {
		t.Errorf("a waiting append committed %d batches, want both", got)
	}
	big := jb("a", 0, 2)
	big.Data = make([]byte, 2<<10)
	if err := j.AppendNoWait([]Batch{big}, nil); err != nil {
		t.Fatal(err)
	}
	for len(journaled(t, j)) < 3 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if got := len(journaled(t, j)); got != 3 {
		t.Errorf("past CoalesceBytes the journal holds %d batches, want 3", got)
	}
}

// TestJournalCrashKeepsEveryAcknowledgedBatch takes crash-consistent
// copies of a journal's filesystem (only what was synced survives, or a
// random part of what was not) after acknowledged appends. Pointers are
// committed to Pebble without an fsync of their own, so the copies lose
// most of them: every acknowledged batch must come back from the batch
// log, once, writable or read-only, and the journal must go on appending.
func TestJournalCrashKeepsEveryAcknowledgedBatch(t *testing.T) {
	fs := vfs.NewCrashableMem()
	j := openTestJournal(t, "/j", func(o *JournalOptions) { o.FS = fs })
	var acked []string
	for i := range 50 {
		b := jb("a", int32(i%3), int64(i))
		appendWait(t, j, b)
		acked = append(acked, fmt.Sprintf("%s/%d@%d=%s", b.Topic, b.Partition, b.BaseOffset, b.Data))
	}
	sort.Strings(acked)
	rng := rand.New(rand.NewPCG(1, 2))
	for round, pct := range []int{0, 0, 30, 70, 100} {
		clone := fs.CrashClone(vfs.CrashCloneCfg{UnsyncedDataPercent: pct, RNG: rng})
		ro := openTestJournal(t, "/j", func(o *JournalOptions) { o.FS = clone; o.ReadOnly = true })
		if got := sorted(journaled(t, ro)); fmt.Sprint(got) != fmt.Sprint(acked) {
			t.Fatalf("round %d (%d%% unsynced kept), read-only: %d batches, want the %d acknowledged", round, pct, len(got), len(acked))
		}
		ro.Close()
		rw := openTestJournal(t, "/j", func(o *JournalOptions) { o.FS = clone })
		if got := sorted(journaled(t, rw)); fmt.Sprint(got) != fmt.Sprint(acked) {
			t.Fatalf("round %d (%d%% unsynced kept): %d batches, want the %d acknowledged", round, pct, len(got), len(acked))
		}
		appendWait(t, rw, jb("a", 0, 1000), jb("a", 0, 3)) // 3 is a duplicate
		if s := rw.Stats(); s.Batches != 1 || s.Duplicates != 1 {
			t.Errorf("round %d: after recovery %d batches, %d duplicates; want 1, 1", round, s.Batches, s.Duplicates)
		}
		if err := rw.Close(); err != nil {
			t.Fatal(err)
		}
		again := openTestJournal(t, "/j", func(o *JournalOptions) { o.FS = clone })
		if got := len(journaled(t, again)); got != len(acked)+1 {
			t.Errorf("round %d: reopened after recovery: %d batches, want %d", round, got, len(acked)+1)
		}
		again.Close()
	}
	j.Close()
}

func sorted(s []string) []string { sort.Strings(s); return s }

// TestJournalIgnoresATornRecord: a commit that failed halfway left part of
// a record at the end of a log file. Opening ignores it (nobody was told
// it was journaled) and keeps everything before.
func TestJournalIgnoresATornRecord(t *testing.T) {
	dir := t.TempDir()
	j := openTestJournal(t, dir, nil)
	appendWait(t, j, jb("a", 0, 0), jb("a", 0, 10))
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}
	files, _ := filepath.Glob(filepath.Join(dir, logDir, "*.log"))
	var last string
	for _, f := range files {
		if st, _ := os.Stat(f); st.Size() > 0 {
			last = f
		}
	}
	if last == "" {
		t.Fatalf("no batch log with data in %v", files)
	}
	// Forget the pointers (as a crash could), then tear a third record
	// where the clean close's end record was.
	rec := append([]byte{logRecordMagic, 0, 0, 1, 0}, bytes.Repeat([]byte{7}, 40)...)
	st, err := os.Stat(last)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(last, st.Size()-logRecordHeader); err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(last, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.Write(rec)
	f.Close()
	db, err := pebble.Open(dir, &pebble.Options{})
	if err != nil {
		t.Fatal(err)
	}
	db.Delete(batchKey("a", 0, 10), pebble.Sync)
	db.Delete(metaKey("logpos"), pebble.Sync)
	db.Close()

	j = openTestJournal(t, dir, nil)
	defer j.Close()
	if got := journaled(t, j); fmt.Sprint(got) != "[a/0@0=batch a/0@0 a/0@10=batch a/0@10]" {
		t.Errorf("after a torn record: %q", got)
	}
}

// TestJournalReadsFormat1: a journal written by an amber that kept batch
// values in Pebble opens, lists and uploads its batches, and takes new
// ones into the batch log.
func TestJournalReadsFormat1(t *testing.T) {
	dir := t.TempDir()
	db, err := pebble.Open(dir, &pebble.Options{FormatMajorVersion: pebble.FormatNewest})
	if err != nil {
		t.Fatal(err)
	}
	old := jb("old", 0, 5)
	db.Set(metaKey("format"), []byte{1}, pebble.Sync)
	db.Set(batchKey(old.Topic, old.Partition, old.BaseOffset), append(appendBatchValueHeader(nil, &old), old.Data...), pebble.Sync)
	db.Close()

	ro := openTestJournal(t, dir, func(o *JournalOptions) { o.ReadOnly = true })
	if got := journaled(t, ro); fmt.Sprint(got) != "[old/0@5=batch old/0@5]" {
		t.Errorf("format 1, read-only: %q", got)
	}
	ro.Close()
	j := openTestJournal(t, dir, nil)
	defer j.Close()
	appendWait(t, j, jb("new", 0, 0), jb("old", 0, 5))
	if got := journaled(t, j); fmt.Sprint(got) != "[new/0@0=batch new/0@0 old/0@5=batch old/0@5]" {
		t.Errorf("format 1 then 2: %q", got)
	}
	if j.BacklogBytes() != int64(len(old.Data)+len(jb("new", 0, 0).Data)) {
		t.Errorf("backlog %d", j.BacklogBytes())
	}
}

// TestJournalKeepsTwoTopicsOfOneName: a topic deleted and created again
// before its batches were uploaded has other batches at the same offsets.
// Both are journaled (the second under a suffixed key); a retry of either
// is still stored once.
func TestJournalKeepsTwoTopicsOfOneName(t *testing.T) {
	j := openTestJournal(t, t.TempDir(), nil)
	defer j.Close()
	old, recreated := jb("t", 0, 0), jb("t", 0, 0)
	recreated.Data = []byte("a batch of the topic created again")
	appendWait(t, j, old, jb("t", 0, 1))
	appendWait(t, j, recreated)
	appendWait(t, j, recreated, old) // retries of both
	s := j.Stats()
	if s.Batches != 3 || s.Duplicates != 2 {
		t.Errorf("%d batches, %d duplicates; want 3, 2", s.Batches, s.Duplicates)
	}
	got := journaled(t, j)
	if fmt.Sprint(got) != "[t/0@0=batch t/0@0 t/0@0=a batch of the topic created again t/0@1=batch t/0@1]" {
		t.Errorf("journal holds %q", got)
	}
}

// TestJournalLargeGroupInChunks: a group commit larger than logChunk (an
// async proxy at full speed gathers tens of MB) is written in chunks and
// reads back whole, in a reopened journal too.
func TestJournalLargeGroupInChunks(t *testing.T) {
	dir := t.TempDir()
	j := openTestJournal(t, dir, nil)
	var group []Batch
	want := map[int64][]byte{}
	for i := range 60 {
		b := jb("big", int32(i%3), int64(i))
		b.Data = bytes.Repeat([]byte{byte(i)}, 300<<10)
		group = append(group, b)
		want[b.BaseOffset] = b.Data
	}
	appendWait(t, j, group...)
	check := func(j *Journal, when string) {
		n := 0
		if err := j.Batches(func(b *Batch) error {
			n++
			if !bytes.Equal(b.Data, want[b.BaseOffset]) {
				t.Errorf("%s: batch %d differs", when, b.BaseOffset)
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		if n != len(want) {
			t.Errorf("%s: %d batches, want %d", when, n, len(want))
		}
	}
	check(j, "after the commit")
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}
	j = openTestJournal(t, dir, nil)
	defer j.Close()
	check(j, "reopened")
}

// TestJournalSyncCommitDelay: with a delay, appends whose callers wait
// and that arrive within it share one group commit; a delay out of range
// is refused.
func TestJournalSyncCommitDelay(t *testing.T) {
	j := openTestJournal(t, t.TempDir(), func(o *JournalOptions) { o.SyncCommitDelay = 300 * time.Millisecond })
	defer j.Close()
	first, err := j.Append([]Batch{jb("a", 0, 0)}, nil)
	if err != nil {
		t.Fatal(err)
	}
	appendWait(t, j, jb("a", 1, 0)) // arrives while the writer waits
	if err := <-first; err != nil {
		t.Fatal(err)
	}
	if s := j.Stats(); s.Batches != 2 || s.Commits != 1 {
		t.Errorf("%d batches in %d commits, want 2 in 1", s.Batches, s.Commits)
	}
	for _, d := range []time.Duration{-time.Millisecond, 2 * time.Second} {
		if _, err := OpenJournal(JournalOptions{Dir: t.TempDir(), SyncCommitDelay: d}); err == nil {
			t.Errorf("sync commit delay %s accepted", d)
		}
	}
}
