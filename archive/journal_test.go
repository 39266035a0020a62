package archive

import (
	"fmt"
	"testing"
	"time"
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
