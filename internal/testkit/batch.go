package testkit

import (
	"encoding/binary"
	"hash/crc32"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// RecordBatch encodes a valid uncompressed v2 record batch holding one
// record per key/value pair (keys[i], values[i]): first offset 0, CRC set,
// as a producer sends it.
func RecordBatch(kvs ...[]byte) []byte {
	now := time.Now().UnixMilli()
	var recs []byte
	n := 0
	for i := 0; i+1 < len(kvs); i += 2 {
		r := kmsg.Record{OffsetDelta: int32(n), Key: kvs[i], Value: kvs[i+1]}
		recs = appendRecord(recs, r)
		n++
	}
	b := kmsg.RecordBatch{
		FirstOffset:          0,
		PartitionLeaderEpoch: -1,
		Magic:                2,
		LastOffsetDelta:      int32(n - 1),
		FirstTimestamp:       now,
		MaxTimestamp:         now,
		ProducerID:           -1,
		ProducerEpoch:        -1,
		FirstSequence:        -1,
		NumRecords:           int32(n),
		Records:              recs,
	}
	raw := b.AppendTo(nil)
	binary.BigEndian.PutUint32(raw[8:], uint32(len(raw)-12))
	// Length covers everything after the length field itself; the CRC
	// covers everything after the CRC (from Attributes on).
	crc := crc32.Checksum(raw[21:], crc32.MakeTable(crc32.Castagnoli))
	binary.BigEndian.PutUint32(raw[17:], crc)
	return raw
}

// appendRecord appends one record in the v2 record encoding: a varint
// length, then the record.
func appendRecord(dst []byte, r kmsg.Record) []byte {
	r.Length = 0
	r.Length = int32(len(r.AppendTo(nil)) - 1) // minus the 1-byte varint 0
	return r.AppendTo(dst)
}
