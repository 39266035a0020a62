package archivebench

import (
	"context"
	"fmt"
	"time"

	"github.com/amber-kafka/amber/archive"
	"github.com/amber-kafka/amber/archive/memstore"
	"github.com/amber-kafka/amber/internal/testkit"
)

// seasonSpares is how many spare batch log files a tee run's journal
// starts with: the 64 MiB files a proxy whose uploader keeps up reuses
// (archive.JournalOptions.SpareLogFiles). Four hold the paced scenario's
// warm-up and window (about 180 MB at 100 MB/s) whole; the produce
// scenario, flat out, goes past them into new files.
const seasonSpares = 4

// seasonJournal brings a new journal in dir to the steady state of a
// proxy whose uploader keeps up: no batches, and seasonSpares spare log
// files. It journals seasonSpares files' worth of batches, uploads them
// to a memory store that is then dropped, and closes the journal. It
// writes one file more than it keeps, all full: the journal keeps
// seasonSpares of them when it opens again.
func seasonJournal(ctx context.Context, dir string) error {
	j, err := archive.OpenJournal(archive.JournalOptions{Dir: dir, SpareLogFiles: seasonSpares})
	if err != nil {
		return err
	}
	data := testkit.RecordBatch([]byte("k"), make([]byte, 1<<20)) // zeros: the upload compresses them to nothing
	batches := make([]archive.Batch, 16)
	for off := int64(0); off < (seasonSpares+1)*64; off += int64(len(batches)) {
		for i := range batches {
			batches[i] = archive.Batch{Topic: "season", BaseOffset: off + int64(i), AckTime: time.Now(), LogAppendTime: -1, Data: data}
		}
		done, err := j.Append(batches, nil)
		if err == nil {
			err = <-done
		}
		if err != nil {
			j.Close()
			return fmt.Errorf("season journal: %w", err)
		}
	}
	u, err := archive.NewUploader(archive.UploaderOptions{Journal: j, Store: memstore.New(), WriterID: "0123456789abcdef"})
	if err == nil {
		err = u.Flush(ctx)
	}
	if cerr := j.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("season journal: %w", err)
	}
	return nil
}
