package protocol

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// Codec decompresses and compresses record payloads by Kafka codec number
// (1 gzip, 2 snappy, 3 lz4, 4 zstd). The protocol package knows the batch
// format but no compression library; callers pass kgo's.
type Codec interface {
	Decompress(src []byte, codec int) ([]byte, error)
	Compress(src []byte, codec int) ([]byte, error)
}

// Record is one decoded record of a batch, with its absolute offset and
// timestamp.
type Record struct {
	Offset    int64
	Timestamp int64  // ms
	Key       []byte // nil for a null key
	Value     []byte // nil for a null value
	Headers   []kmsg.Header
}

// DecodeRecords decodes every record of the batch b (header h) whose first
// offset is base. Keys, values and headers alias the decompressed payload.
func DecodeRecords(b []byte, h *BatchHeader, base int64, c Codec) ([]Record, error) {
	payload := b[BatchHeaderLen:h.Size()]
	if h.Codec() != 0 {
		if c == nil {
			return nil, fmt.Errorf("%w: compressed with codec %d and no decompressor", ErrBadBatch, h.Codec())
		}
		var err error
		if payload, err = c.Decompress(payload, h.Codec()); err != nil {
			return nil, fmt.Errorf("%w: decompress codec %d: %v", ErrBadBatch, h.Codec(), err)
		}
	}
	if h.NumRecords < 0 || int(h.NumRecords) > len(payload) {
		return nil, fmt.Errorf("%w: %d records in %d bytes", ErrBadBatch, h.NumRecords, len(payload))
	}
	out := make([]Record, 0, h.NumRecords)
	logAppend := h.Attributes&AttrLogAppendTime != 0
	for i := int32(0); i < h.NumRecords; i++ {
		length, n := binary.Varint(payload)
		if n <= 0 || length < 0 || int64(len(payload)-n) < length {
			return nil, fmt.Errorf("%w: record %d length", ErrBadBatch, i)
		}
		var r kmsg.Record
		if err := r.ReadFrom(payload[:n+int(length)]); err != nil {
			return nil, fmt.Errorf("%w: record %d: %v", ErrBadBatch, i, err)
		}
		payload = payload[n+int(length):]
		rec := Record{Offset: base + int64(r.OffsetDelta), Timestamp: h.FirstTimestamp + r.TimestampDelta64, Key: r.Key, Value: r.Value, Headers: r.Headers}
		if logAppend {
			rec.Timestamp = h.MaxTimestamp
		}
		out = append(out, rec)
	}
	return out, nil
}

// EncodeBatch builds a v2 batch (FirstOffset 0, as a producer sends it)
// holding recs, whose offsets must be base + 0, 1, 2, … in order of
// OffsetDelta (offsets may have gaps, as after compaction). attrs are the
// batch attributes (the codec bits choose the compression), producer
// fields as given. Length and CRC are computed.
func EncodeBatch(recs []Record, base int64, attrs int16, producerID int64, epoch int16, seq int32, c Codec) ([]byte, error) {
	if len(recs) == 0 {
		return nil, fmt.Errorf("%w: no records", ErrBadBatch)
	}
	first, maxTS := recs[0].Timestamp, recs[0].Timestamp
	for _, r := range recs {
		first, maxTS = min(first, r.Timestamp), max(maxTS, r.Timestamp)
	}
	var payload []byte
	for _, r := range recs {
		kr := kmsg.Record{TimestampDelta64: r.Timestamp - first, OffsetDelta: int32(r.Offset - base), Key: r.Key, Value: r.Value, Headers: r.Headers}
		kr.TimestampDelta = int32(kr.TimestampDelta64)
		body := kr.AppendTo(nil) // Length 0 encodes as one byte
		kr.Length = int32(len(body) - 1)
		payload = kr.AppendTo(payload)
	}
	codec := int(attrs & AttrCodecMask)
	if codec != 0 {
		var err error
		if payload, err = c.Compress(payload, codec); err != nil {
			return nil, err
		}
	}
	b := make([]byte, BatchHeaderLen, BatchHeaderLen+len(payload))
	binary.BigEndian.PutUint64(b[0:], 0)
	binary.BigEndian.PutUint32(b[12:], 0xffffffff) // PartitionLeaderEpoch -1
	b[16] = 2
	binary.BigEndian.PutUint16(b[21:], uint16(attrs))
	binary.BigEndian.PutUint32(b[23:], uint32(recs[len(recs)-1].Offset-base))
	binary.BigEndian.PutUint64(b[27:], uint64(first))
	binary.BigEndian.PutUint64(b[35:], uint64(maxTS))
	binary.BigEndian.PutUint64(b[43:], uint64(producerID))
	binary.BigEndian.PutUint16(b[51:], uint16(epoch))
	binary.BigEndian.PutUint32(b[53:], uint32(seq))
	binary.BigEndian.PutUint32(b[57:], uint32(len(recs)))
	b = append(b, payload...)
	binary.BigEndian.PutUint32(b[8:], uint32(len(b)-batchLenOffset))
	binary.BigEndian.PutUint32(b[17:], crc32.Checksum(b[21:], crc32c))
	return b, nil
}

// SetProducer rewrites a batch's producer id, epoch, first sequence and
// attributes in place and recomputes its CRC. The records are untouched
// (compressed or not), so this is cheap: what a restore changes to replay
// a batch under its own idempotent producer.
func SetProducer(b []byte, attrs int16, producerID int64, epoch int16, seq int32) {
	binary.BigEndian.PutUint16(b[21:], uint16(attrs))
	binary.BigEndian.PutUint64(b[43:], uint64(producerID))
	binary.BigEndian.PutUint16(b[51:], uint16(epoch))
	binary.BigEndian.PutUint32(b[53:], uint32(seq))
	binary.BigEndian.PutUint32(b[17:], crc32.Checksum(b[21:], crc32c))
}
