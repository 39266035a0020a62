package archive

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"
)

// uploadOldest does what an upload does to the journal: forgets its n
// lowest batch keys (all if n < 0). It returns them as journaled() names
// them.
func uploadOldest(t *testing.T, j *Journal, n int) []string {
	t.Helper()
	var (
		keys  [][]byte
		names []string
		bytes int64
	)
	err := j.batchKeys(func(key, v []byte) error {
		if n >= 0 && len(keys) == n {
			return nil
		}
		var b Batch
		var buf []byte
		if err := j.decodeStoredBatch(v, &b, &buf); err != nil {
			return err
		}
		topic, partition, offset, err := parseBatchKey(key)
		if err != nil {
			return err
		}
		keys = append(keys, slices.Clone(key))
		names = append(names, fmt.Sprintf("%s/%d@%d=%s", topic, partition, offset, b.Data))
		bytes += int64(len(b.Data))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if !j.lockUploads() {
		t.Fatal("journal failed")
	}
	defer j.unlockUploads()
	seq, err := j.uploadSeq()
	if err != nil {
		t.Fatal(err)
	}
	if err := j.markUploaded(keys, bytes, seq+1); err != nil {
		t.Fatal(err)
	}
	return names
}

// logFiles lists the batch log's files in fs.
func logFiles(t *testing.T, fs vfs.FS, dir string) []string {
	t.Helper()
	names, err := fs.List(fs.PathJoin(dir, logDir))
	if err != nil {
		t.Fatal(err)
	}
	var logs []string
	for _, n := range names {
		if _, ok := parseLogFileName(n); ok {
			logs = append(logs, n)
		}
	}
	slices.Sort(logs)
	return logs
}

// TestJournalCrashWithReusedLogFiles: batch log files are reused once
// uploaded (renamed, then overwritten from the start), so behind a reused
// file's new records lie the records it held before, whole and with
// their old checksums. All batches are the same size, so the old records
// start exactly where the new ones end. Crash-consistent copies of the
// filesystem taken at many points must hold every acknowledged batch not
// yet uploaded, once, and no uploaded batch: a scan that took an old
// record for a new one would bring an uploaded batch back.
func TestJournalCrashWithReusedLogFiles(t *testing.T) {
	fs := vfs.NewCrashableMem()
	j := openTestJournal(t, "/j", func(o *JournalOptions) { o.FS = fs })
	j.blog.fileSize = 4 << 10 // a file holds 32 batches
	rng := rand.New(rand.NewPCG(3, 4))
	live := map[string]bool{}
	maxFiles, checks := 0, 0
	check := func(round int) {
		checks++
		want := make([]string, 0, len(live))
		for k := range live {
			want = append(want, k)
		}
		slices.Sort(want)
		clone := fs.CrashClone(vfs.CrashCloneCfg{UnsyncedDataPercent: []int{0, 50, 100}[round%3], RNG: rng})
		ro := openTestJournal(t, "/j", func(o *JournalOptions) { o.FS = clone; o.ReadOnly = true })
		if got := sorted(journaled(t, ro)); !slices.Equal(got, want) {
			t.Fatalf("round %d, read-only: %d batches, want the %d acknowledged and not uploaded\n got %q\nwant %q", round, len(got), len(want), got, want)
		}
		ro.Close()
		rw := openTestJournal(t, "/j", func(o *JournalOptions) { o.FS = clone })
		if got := sorted(journaled(t, rw)); !slices.Equal(got, want) {
			t.Fatalf("round %d: %d batches, want the %d acknowledged and not uploaded", round, len(got), len(want))
		}
		if err := rw.Close(); err != nil {
			t.Fatal(err)
		}
	}
	for round := range 40 {
		for i := range 20 {
			b := jb("t", int32(i%2), int64(round*100+i))
			b.Data = fmt.Appendf(nil, "%0100d", round*100+i) // one size: records line up with the old ones
			appendWait(t, j, b)
			live[fmt.Sprintf("%s/%d@%d=%s", b.Topic, b.Partition, b.BaseOffset, b.Data)] = true
		}
		if round%2 == 1 {
			for _, k := range uploadOldest(t, j, 35) {
				delete(live, k)
			}
		}
		maxFiles = max(maxFiles, len(logFiles(t, fs, "/j")))
		if round%4 == 3 {
			check(round)
		}
	}
	// 800 batches of 128-byte records went through files of 4 KiB, and
	// uploads freed most of them: most files were spares reused.
	if n := int(j.blog.nextNum() - 1); n < 20 || j.blog.reused < n/2 {
		t.Errorf("%d files started, %d of them reused, at most %d on disk at once: want most reused", n, j.blog.reused, maxFiles)
	}
	t.Logf("%d files started, %d of them reused, at most %d on disk at once", j.blog.nextNum()-1, j.blog.reused, maxFiles)
	j.Close()
	if checks == 0 {
		t.Fatal("no crash checked")
	}
}

// TestJournalReusesUploadedLogFiles: a file whose batches are all uploaded
// is kept as a spare (at most DefaultSpareLogFiles) and becomes the next file,
// the same file on disk; its old records are not read as new ones, after
// a clean close either.
func TestJournalReusesUploadedLogFiles(t *testing.T) {
	dir := t.TempDir()
	j := openTestJournal(t, dir, nil)
	j.blog.fileSize = 64 << 10
	var offset int64
	appendN := func(n int) {
		for range n {
			b := jb("a", 0, offset)
			b.Data = bytes.Repeat([]byte{byte(offset)}, 10<<10)
			appendWait(t, j, b)
			offset++
		}
	}
	appendN(10) // file 1 full at 64 KiB, file 2 active
	if logs := logFiles(t, vfs.Default, dir); len(logs) != 2 {
		t.Fatalf("log files %v, want 2", logs)
	}
	first, err := os.Stat(filepath.Join(dir, logDir, logFileName(1)))
	if err != nil {
		t.Fatal(err)
	}
	uploadOldest(t, j, -1)
	if logs := logFiles(t, vfs.Default, dir); len(logs) != 2 || logs[0] != logFileName(1) {
		t.Fatalf("after an upload: log files %v, want file 1 kept as a spare and file 2", logs)
	}
	appendN(10) // file 2 full: file 3 is file 1 reused
	logs := logFiles(t, vfs.Default, dir)
	if !slices.Equal(logs, []string{logFileName(2), logFileName(3)}) {
		t.Fatalf("after another 100 KiB: log files %v, want 2 and 3", logs)
	}
	third, err := os.Stat(filepath.Join(dir, logDir, logFileName(3)))
	if err != nil {
		t.Fatal(err)
	}
	if !os.SameFile(first, third) {
		t.Error("file 3 is not file 1 reused")
	}
	if got := len(journaled(t, j)); got != 10 {
		t.Errorf("%d batches journaled, want the 10 not uploaded", got)
	}
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}
	j = openTestJournal(t, dir, nil)
	defer j.Close()
	if got := journaled(t, j); len(got) != 10 || got[0][:7] != "a/0@10=" {
		t.Errorf("reopened: %d batches, want 10 from offset 10", len(got))
	}
	uploadOldest(t, j, -1)
	// Files 2 and 3 are spares now (file 4 is one of them, reused at open).
	if logs := logFiles(t, vfs.Default, dir); len(logs) > 1+DefaultSpareLogFiles {
		t.Errorf("log files %v, want at most %d", logs, 1+DefaultSpareLogFiles)
	}
}

// TestJournalReadsFormat2: a journal of format 2 has batch log files
// without a header, with records of magic 0xB1 and a plain CRC. Its
// batches are read, recovered from the log where their pointers are
// missing, and uploaded; its files are removed, not reused.
func TestJournalReadsFormat2(t *testing.T) {
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, logDir), 0o755); err != nil {
		t.Fatal(err)
	}
	l := &batchLog{active: &logFile{num: 1, magic: logRecordMagicV2}}
	var ptrs []batchPtr
	for i := range 4 {
		b := jb("old", 0, int64(i))
		ptrs = append(ptrs, l.add(batchKey(b.Topic, b.Partition, b.BaseOffset), appendBatchValueHeader(nil, &b), b.Data))
	}
	if err := os.WriteFile(filepath.Join(dir, logDir, logFileName(1)), l.buf, 0o644); err != nil {
		t.Fatal(err)
	}
	db, err := pebble.Open(dir, &pebble.Options{FormatMajorVersion: pebble.FormatNewest})
	if err != nil {
		t.Fatal(err)
	}
	db.Set(metaKey("format"), []byte{2}, pebble.Sync)
	for i, p := range ptrs[:2] { // the last two lost their pointers
		db.Set(batchKey("old", 0, int64(i)), appendBatchPtr(nil, p), pebble.Sync)
	}
	db.Set(metaKey("logpos"), logPos(1, ptrs[2].off), pebble.Sync)
	db.Close()

	want := "[old/0@0=batch old/0@0 old/0@1=batch old/0@1 old/0@2=batch old/0@2 old/0@3=batch old/0@3]"
	ro := openTestJournal(t, dir, func(o *JournalOptions) { o.ReadOnly = true })
	if got := journaled(t, ro); fmt.Sprint(got) != want {
		t.Errorf("format 2, read-only: %q", got)
	}
	ro.Close()
	j := openTestJournal(t, dir, nil)
	defer j.Close()
	appendWait(t, j, jb("new", 0, 0))
	if got := journaled(t, j); fmt.Sprint(got) != "[new/0@0=batch new/0@0 "+want[1:] {
		t.Errorf("format 2 then 3: %q", got)
	}
	v, closer, err := j.db.Get(metaKey("format"))
	if err != nil || !bytes.Equal(v, []byte{journalFormat}) {
		t.Errorf("format after open: %x, %v", v, err)
	}
	closer.Close()
	uploadOldest(t, j, -1)
	if logs := logFiles(t, vfs.Default, dir); slices.Contains(logs, logFileName(1)) {
		t.Errorf("log files %v: the format 2 file was kept after its batches were uploaded", logs)
	}
}
