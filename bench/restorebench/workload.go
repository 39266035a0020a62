package restorebench

import (
	"context"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/amber-kafka/amber/archive"
	"github.com/amber-kafka/amber/archive/memstore"
	"github.com/amber-kafka/amber/bench/runner"
	"github.com/amber-kafka/amber/protocol"
)

// sourceTopic is the archived topic every workload restores from.
const sourceTopic = "bench"

// Workload is one shape's records, and an archive holding them batched as
// a franz-go producer with that shape's batch size and codec batches them.
type Workload struct {
	Shape   Shape
	Archive *archive.Archive

	Records      int64
	RecordBytes  int64 // keys and values
	Batches      int64
	WireBytes    int64 // the archived batches' bytes, as produced
	ArchiveBytes int64 // what the store holds: segments and indexes

	// parts are each partition's records, in offset order.
	parts [][]record
}

type record struct {
	key, value []byte
	ts         time.Time
}

// The archived batches' producer, as a franz-go idempotent producer would
// have had: the restore replaces it with its own.
const (
	sourceProducerID = 4242
	batchOverhead    = protocol.BatchHeaderLen
)

// NewWorkload builds shape's records (o.ShapeBytes of o.RecordBytes
// values, round-robin over o.Partitions) and archives them into memory.
func NewWorkload(ctx context.Context, shape Shape, o Options) (*Workload, error) {
	o.EnsureDefaults()
	w := &Workload{Shape: shape, parts: make([][]record, o.Partitions)}
	rng := rand.New(rand.NewPCG(uint64(shape.BatchBytes), uint64(len(shape.Codec))))
	n := o.ShapeBytes / int64(o.RecordBytes)
	t0 := time.Now().Add(-time.Hour).Truncate(time.Millisecond)
	for i := range n {
		r := record{key: fmt.Appendf(nil, "user-%010d", rng.IntN(1_000_000)), value: textValue(rng, o.RecordBytes), ts: t0.Add(time.Duration(i) * time.Microsecond).Truncate(time.Millisecond)}
		p := i % int64(o.Partitions)
		w.parts[p] = append(w.parts[p], r)
		w.Records++
		w.RecordBytes += int64(len(r.key) + len(r.value))
	}

	store := memstore.New()
	aw, err := archive.NewWriter(ctx, archive.WriterOptions{Store: store, WriterID: archive.NewWriterID()})
	if err != nil {
		return nil, err
	}
	attrs := codecAttr(shape.Codec)
	ack := time.Now()
	for p, recs := range w.parts {
		var (
			pending []archive.Batch
			base    int64
			seq     int32
		)
		for len(recs) > 0 {
			k := batchLen(recs, shape.BatchBytes)
			prs := make([]protocol.Record, k)
			for i, r := range recs[:k] {
				prs[i] = protocol.Record{Offset: base + int64(i), Timestamp: r.ts.UnixMilli(), Key: r.key, Value: r.value}
			}
			data, err := protocol.EncodeBatch(prs, base, attrs, sourceProducerID, 0, seq, archive.Codec())
			if err != nil {
				return nil, fmt.Errorf("encode a %s batch: %w", shape, err)
			}
			pending = append(pending, archive.Batch{Topic: sourceTopic, Partition: int32(p), BaseOffset: base, AckTime: ack, LogAppendTime: -1, ClientID: "restorebench", Data: data})
			w.Batches++
			w.WireBytes += int64(len(data))
			base += int64(k)
			seq += int32(k)
			recs = recs[k:]
			if len(pending) >= 256 {
				if err := aw.Write(ctx, pending, nil); err != nil {
					return nil, err
				}
				pending = pending[:0]
			}
		}
		if err := aw.Write(ctx, pending, nil); err != nil {
			return nil, err
		}
	}
	if err := aw.Flush(ctx); err != nil {
		return nil, err
	}
	w.ArchiveBytes = aw.Stats().Bytes
	if w.Archive, err = archive.OpenArchive(ctx, store, nil); err != nil {
		return nil, err
	}
	return w, nil
}

// batchLen is how many of recs fit one batch of at most max bytes before
// compression (at least one), counted as franz-go counts: the batch
// header plus each record's encoded length.
func batchLen(recs []record, max int) int {
	size := batchOverhead
	for i, r := range recs {
		size += recordLen(r)
		if size > max && i > 0 {
			return i
		}
	}
	return len(recs)
}

// recordLen is a record's encoded length in a v2 batch: a varint length,
// attributes, timestamp and offset deltas (counted at their widest here,
// as they grow through a batch), key, value, no headers.
func recordLen(r record) int {
	body := 1 + 4 + 3 + varintLen(len(r.key)) + len(r.key) + varintLen(len(r.value)) + len(r.value) + 1
	return varintLen(body) + body
}

func varintLen(n int) int {
	var b [binary.MaxVarintLen64]byte
	return binary.PutVarint(b[:], int64(n))
}

func codecAttr(codec string) int16 {
	return int16(slices.Index(runner.Codecs, codec)) // none 0, gzip 1, snappy 2, lz4 3, zstd 4
}

// produceRecords are the workload's records for a producer writing into
// topic: partitions interleaved, as an application spreading its writes
// would hand them over.
func (w *Workload) produceRecords(topic string) []*kgo.Record {
	out := make([]*kgo.Record, 0, w.Records)
	backing := make([]kgo.Record, w.Records)
	for i := 0; len(out) < len(backing); i++ {
		for p, recs := range w.parts {
			if i < len(recs) {
				r := &backing[len(out)]
				*r = kgo.Record{Topic: topic, Partition: int32(p), Key: recs[i].key, Value: recs[i].value, Timestamp: recs[i].ts}
				out = append(out, r)
			}
		}
	}
	return out
}

// partitionRecords is how many records partition p holds.
func (w *Workload) partitionRecords(p int) int64 { return int64(len(w.parts[p])) }

// words make values that compress about as text and JSON payloads do
// (lz4 about 2×).
var words = []string{
	"order", "customer", "amount", "currency", "EUR", "USD", "status", "created", "updated", "shipped",
	"payment", "captured", "refund", "items", "sku", "quantity", "price", "discount", "address", "street",
	"city", "postcode", "country", "email", "phone", "session", "device", "mobile", "desktop", "region",
	"warehouse", "carrier", "tracking", "delivered", "pending", "cancelled", "true", "false", "null", "id",
}

// textValue is n bytes of words and numbers.
func textValue(rng *rand.Rand, n int) []byte {
	b := make([]byte, 0, n+16)
	b = append(b, '{')
	for len(b) < n {
		b = append(b, '"')
		b = append(b, words[rng.IntN(len(words))]...)
		b = append(b, `":`...)
		if rng.IntN(2) == 0 {
			b = fmt.Appendf(b, "%d,", rng.IntN(100_000))
		} else {
			b = append(b, '"')
			b = append(b, words[rng.IntN(len(words))]...)
			b = append(b, `",`...)
		}
	}
	b = b[:n]
	b[n-1] = '}'
	return b
}
