package archive

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/amber-kafka/amber/protocol"
)

// TestParallelBlocksMatchInline builds the same entries into a segment
// compressing each block as it closes and into one compressing blocks on
// several goroutines (the uploader's way), with and without encryption,
// with compressible and random batches in blocks of several sizes: both
// read back to the same entries, with checksums that hold, and compress
// alike.
func TestParallelBlocksMatchInline(t *testing.T) {
	key, err := NewKey(bytes.Repeat([]byte{7}, 32))
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(3, 4))
	var batches []Batch
	for i := range 400 {
		size := 100 + rng.IntN(40<<10)
		val := make([]byte, size)
		if (i/50)%2 == 0 {
			for k := range val {
				val[k] = byte(rng.Uint32())
			}
		} else {
			copy(val, bytes.Repeat([]byte(`{"level":"info","msg":"order placed"}`), size/36+1))
		}
		data, err := protocol.EncodeBatch([]protocol.Record{{Value: val, Timestamp: 1e12}}, 0, 0, -1, -1, -1, nil)
		if err != nil {
			t.Fatal(err)
		}
		batches = append(batches, Batch{Topic: fmt.Sprintf("t%d", i/100), Partition: int32(i % 2), BaseOffset: int64(i), AckTime: time.UnixMicro(int64(i)), LogAppendTime: -1, ClientID: "c", Data: data})
	}
	event := Event{Seq: 1, Time: time.UnixMicro(5), Kind: KindDeleteGroups, Body: []byte(`{"group":"g"}`)}

	read := func(seg, idx []byte, k *Key) (entries []string, stored int64) {
		ix, err := decodeIndex(IndexKey("w", 1), idx, k)
		if err != nil {
			t.Fatal(err)
		}
		if int(ix.SegSize) != len(seg) || sha256.Sum256(seg) != ix.SegSHA256 {
			t.Fatalf("segment size or SHA-256 does not match its index")
		}
		for n := range ix.Blocks {
			blk := &ix.Blocks[n]
			stored += blk.Length
			payload, err := decodeBlock(ix, n, seg[blk.Offset:blk.Offset+blk.Length], k)
			if err != nil {
				t.Fatalf("block %d: %v", n, err)
			}
			switch blk.Kind {
			case blockBatches:
				forEachBatchEntry(blk, payload, func(b *Batch) error {
					entries = append(entries, fmt.Sprintf("%s/%d@%d %x", b.Topic, b.Partition, b.BaseOffset, sha256.Sum256(b.Data)))
					return nil
				})
			case blockEvents:
				forEachEventEntry(payload, func(e *Event) error {
					entries = append(entries, fmt.Sprintf("event %d %s", e.Seq, e.Body))
					return nil
				})
			}
		}
		return entries, stored
	}
	for _, k := range []*Key{nil, key} {
		for _, target := range []int{minBlockTarget, blockTarget} {
			var got [2][]string
			var stored [2]int64
			for mode, par := range []int{0, 3} {
				b := newSegmentBuilder("w", 1, k)
				b.target = target
				b.parallelBlocks(par)
				for i := range batches {
					if err := b.addBatch(&batches[i]); err != nil {
						t.Fatal(err)
					}
					if i == 250 {
						b.addEvent(&event)
					}
				}
				seg, idx := b.finish()
				got[mode], stored[mode] = read(seg, idx, k)
			}
			if len(got[0]) != len(batches)+1 || fmt.Sprint(got[0]) != fmt.Sprint(got[1]) {
				t.Errorf("key %v, blocks of %d: inline %d entries, parallel %d, or they differ", k != nil, target, len(got[0]), len(got[1]))
			}
			if r := float64(stored[1]) / float64(stored[0]); r < 0.97 || r > 1.03 {
				t.Errorf("key %v, blocks of %d: parallel stores %d bytes, inline %d", k != nil, target, stored[1], stored[0])
			}
		}
	}
}
