package archive_test

import (
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/amber-kafka/amber/archive"
	"github.com/amber-kafka/amber/archive/memstore"
)

// TestJournalReleasesUploadedLogFiles: once the uploader has stored every
// batch of a batch log file (FORMAT.md: journal/batches/*.log), the
// journal no longer needs it (it is kept as a spare, to be reused as a
// later file); the batches are in the store.
func TestJournalReleasesUploadedLogFiles(t *testing.T) {
	dir := t.TempDir()
	j, err := archive.OpenJournal(archive.JournalOptions{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	big := recordBatch(strings.Repeat("x", 1<<20))
	for i := range 70 { // past the 64 MiB file size: at least two files
		done, err := j.Append([]archive.Batch{{Topic: "a", Partition: int32(i % 2), BaseOffset: int64(i), AckTime: time.Now(), LogAppendTime: -1, Data: big}}, nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
	logs := func() int {
		files, err := filepath.Glob(filepath.Join(dir, "batches", "*.log"))
		if err != nil {
			t.Fatal(err)
		}
		return len(files)
	}
	if n := logs(); n < 2 {
		t.Fatalf("%d batch log files after 70 MiB, want at least 2", n)
	}
	store := memstore.New()
	u, err := archive.NewUploader(archive.UploaderOptions{Journal: j, Store: store, WriterID: writerA})
	if err != nil {
		t.Fatal(err)
	}
	if err := u.Flush(t.Context()); err != nil {
		t.Fatal(err)
	}
	if n := logs(); n != 2 {
		t.Errorf("%d batch log files after everything was uploaded, want the active one and the full one kept as a spare", n)
	}
	var left int
	j.Batches(func(*archive.Batch) error { left++; return nil })
	if left != 0 || j.BacklogBytes() != 0 {
		t.Errorf("after upload the journal holds %d batches, backlog %d", left, j.BacklogBytes())
	}
	a, err := archive.OpenArchive(t.Context(), store, nil)
	if err != nil {
		t.Fatal(err)
	}
	var batches int64
	for _, c := range a.Coverage() {
		batches += c.Batches
	}
	if batches != 70 {
		t.Errorf("the store holds %d batches, want 70", batches)
	}
}
