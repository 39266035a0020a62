package protocol_test

import (
	"testing"

	"github.com/amber-kafka/amber/internal/testkit"
	"github.com/amber-kafka/amber/protocol"
)

// FuzzSplitBatches feeds arbitrary bytes to the batch splitter the tee
// runs on every produced Records field.
//
// Invariants: nothing panics; every batch handed out lies within the input,
// is as long as its header says, and parses again on its own; the batches
// handed out never add up to more than the input.
func FuzzSplitBatches(f *testing.F) {
	one := testkit.RecordBatch([]byte("k"), []byte("v"))
	f.Add(one)
	f.Add(append(append([]byte{}, one...), one...))
	f.Add(one[:40])
	f.Fuzz(func(t *testing.T, b []byte) {
		total := 0
		protocol.SplitBatches(b, func(h protocol.BatchHeader, batch []byte) error {
			if len(batch) != h.Size() || h.Size() < protocol.BatchHeaderLen {
				t.Fatalf("batch of %d bytes, header says %d", len(batch), h.Size())
			}
			if _, err := protocol.ParseBatchHeader(batch); err != nil {
				t.Fatalf("a batch handed out does not parse alone: %v", err)
			}
			protocol.CheckCRC(&h, batch)
			total += len(batch)
			return nil
		})
		if total > len(b) {
			t.Fatalf("batches add up to %d of %d bytes", total, len(b))
		}
	})
}
