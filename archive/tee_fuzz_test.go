package archive_test

import (
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/amber-kafka/amber/archive"
	"github.com/amber-kafka/amber/internal/testkit"
	"github.com/amber-kafka/amber/protocol"
)

// FuzzTeeProducePairing decodes arbitrary bytes as a Produce request and
// response at a fuzzed version and shows them to the tee.
//
// Invariants: nothing panics; every batch the tee journals belongs to a
// partition the response accepted (error 0, base offset ≥ 0), lies at or
// after that base offset, and is a v2 batch.
func FuzzTeeProducePairing(f *testing.F) {
	req, resp := produceExchange(testkit.RecordBatch([]byte("k"), []byte("v"), []byte("k2"), nil), 7)
	f.Add(int16(9), req.AppendTo(nil), resp.AppendTo(nil))

	f.Fuzz(func(t *testing.T, version int16, reqBytes, respBytes []byte) {
		if version < 3 || version > protocol.MaxVersion(0) {
			return
		}
		req := &kmsg.ProduceRequest{Version: version}
		resp := &kmsg.ProduceResponse{Version: version}
		if req.ReadFrom(reqBytes) != nil || resp.ReadFrom(respBytes) != nil {
			return
		}
		accepted := map[string]int64{}
		for _, tp := range resp.Topics {
			for _, p := range tp.Partitions {
				if p.ErrorCode == 0 && p.BaseOffset >= 0 {
					accepted[tp.Topic+"/"+string(rune(p.Partition))] = p.BaseOffset
				}
			}
		}
		// A journal in memory per input: what it holds is this input's.
		j, err := archive.OpenJournal(archive.JournalOptions{Dir: "fuzz", FS: vfs.NewMem()})
		if err != nil {
			t.Fatal(err)
		}
		defer j.Close()
		tee := archive.NewTee(j, archive.TeeOptions{Durability: archive.Async})
		tee.Observe(&protocol.Exchange{Request: req, Response: resp, Acked: time.Now()})
		j.Commit()
		j.Batches(func(b *archive.Batch) error {
			base, ok := accepted[b.Topic+"/"+string(rune(b.Partition))]
			if !ok {
				t.Fatalf("%s/%d journaled, but the response did not accept it", b.Topic, b.Partition)
			}
			if b.BaseOffset < base {
				t.Fatalf("%s/%d batch at %d before the accepted base %d", b.Topic, b.Partition, b.BaseOffset, base)
			}
			if _, err := protocol.ParseBatchHeader(b.Data); err != nil {
				t.Fatalf("journaled bytes are not a batch: %v", err)
			}
			return nil
		})
	})
}
