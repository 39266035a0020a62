package archive

import (
	"math"
	"path/filepath"
	"testing"
)

// unusedStore is a Store for an uploader that never uploads.
type unusedStore struct{ Store }

func (unusedStore) String() string { return "unused" }

// TestUploaderDueBytes: the loop waits for about FlushBytes of stored
// bytes, judged by the last segment's ratio, within its bounds.
func TestUploaderDueBytes(t *testing.T) {
	const flush = 32 << 20
	for _, tc := range []struct {
		ratio      float64 // 0: nothing uploaded yet
		maxBacklog int64
		want       int64
	}{
		{0, 0, flush},
		{1.01, 0, flush},            // random values: framing makes segments a little larger
		{0.5, 0, 2 * flush},         // halved by zstd
		{0.1, 0, 4 * flush},         // at most 4×
		{0.25, 100 << 20, 50 << 20}, // at most half the journal's cap
		{0.25, 40 << 20, flush},     // never below FlushBytes
	} {
		j, err := OpenJournal(JournalOptions{Dir: filepath.Join(t.TempDir(), "j"), MaxBacklogBytes: tc.maxBacklog})
		if err != nil {
			t.Fatal(err)
		}
		u, err := NewUploader(UploaderOptions{Journal: j, Store: unusedStore{}, WriterID: "00000000000000aa", FlushBytes: flush})
		if err != nil {
			t.Fatal(err)
		}
		if tc.ratio != 0 {
			u.ratio.Store(math.Float64bits(tc.ratio))
		}
		if got := u.dueBytes(); got != tc.want {
			t.Errorf("ratio %v, max backlog %d: due at %d bytes, want %d", tc.ratio, tc.maxBacklog, got, tc.want)
		}
		j.Close()
	}
}
