package protocol

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
)

// A v2 record batch, as produced and fetched (all integers big-endian). The
// offsets and sizes here are part of the Kafka format:
//
//	offset  size  field
//	     0     8  FirstOffset       0 as a producer sends it; the broker assigns
//	     8     4  Length            bytes after this field
//	    12     4  PartitionLeaderEpoch
//	    16     1  Magic             2
//	    17     4  CRC               CRC32C of bytes 21..end
//	    21     2  Attributes        bits 0-2 codec, 3 log-append-time,
//	                                4 transactional, 5 control
//	    23     4  LastOffsetDelta
//	    27     8  FirstTimestamp
//	    35     8  MaxTimestamp
//	    43     8  ProducerID
//	    51     2  ProducerEpoch
//	    53     4  FirstSequence
//	    57     4  NumRecords
//	    61     …  records (compressed as a whole when codec != 0)
const (
	BatchHeaderLen = 61
	batchLenOffset = 8 + 4 // FirstOffset + Length: bytes before Length counts
)

// Batch attribute bits.
const (
	AttrCodecMask     = 0x07
	AttrLogAppendTime = 0x08
	AttrTransactional = 0x10
	AttrControl       = 0x20
)

var (
	// ErrBadBatch is returned for bytes that are not a v2 record batch.
	ErrBadBatch = errors.New("bad record batch")
	// ErrBatchCRC is returned when a batch's CRC does not match.
	ErrBatchCRC = errors.New("record batch CRC mismatch")
)

var crc32c = crc32.MakeTable(crc32.Castagnoli)

// BatchHeader is the decoded fixed header of a v2 record batch.
type BatchHeader struct {
	FirstOffset          int64
	Length               int32 // bytes after the Length field
	PartitionLeaderEpoch int32
	Magic                int8
	CRC                  uint32
	Attributes           int16
	LastOffsetDelta      int32
	FirstTimestamp       int64
	MaxTimestamp         int64
	ProducerID           int64
	ProducerEpoch        int16
	FirstSequence        int32
	NumRecords           int32
}

// Size is the batch's total size in bytes.
func (h *BatchHeader) Size() int { return batchLenOffset + int(h.Length) }

// Records is how many offsets the batch spans.
func (h *BatchHeader) Records() int64 { return int64(h.LastOffsetDelta) + 1 }

// Codec is the compression codec: 0 none, 1 gzip, 2 snappy, 3 lz4, 4 zstd.
func (h *BatchHeader) Codec() int { return int(h.Attributes & AttrCodecMask) }

// Transactional reports whether the batch belongs to a transaction.
func (h *BatchHeader) Transactional() bool { return h.Attributes&AttrTransactional != 0 }

// Control reports whether the batch holds a control record (a transaction
// marker).
func (h *BatchHeader) Control() bool { return h.Attributes&AttrControl != 0 }

// ParseBatchHeader decodes the header of the batch at the start of b and
// checks that the whole batch is present. It does not check the CRC.
func ParseBatchHeader(b []byte) (BatchHeader, error) {
	var h BatchHeader
	if len(b) < BatchHeaderLen {
		return h, fmt.Errorf("%w: %d bytes, less than a header", ErrBadBatch, len(b))
	}
	h.FirstOffset = int64(binary.BigEndian.Uint64(b[0:]))
	h.Length = int32(binary.BigEndian.Uint32(b[8:]))
	h.PartitionLeaderEpoch = int32(binary.BigEndian.Uint32(b[12:]))
	h.Magic = int8(b[16])
	h.CRC = binary.BigEndian.Uint32(b[17:])
	h.Attributes = int16(binary.BigEndian.Uint16(b[21:]))
	h.LastOffsetDelta = int32(binary.BigEndian.Uint32(b[23:]))
	h.FirstTimestamp = int64(binary.BigEndian.Uint64(b[27:]))
	h.MaxTimestamp = int64(binary.BigEndian.Uint64(b[35:]))
	h.ProducerID = int64(binary.BigEndian.Uint64(b[43:]))
	h.ProducerEpoch = int16(binary.BigEndian.Uint16(b[51:]))
	h.FirstSequence = int32(binary.BigEndian.Uint32(b[53:]))
	h.NumRecords = int32(binary.BigEndian.Uint32(b[57:]))
	switch {
	case h.Magic != 2:
		return h, fmt.Errorf("%w: magic %d, only v2 batches are supported", ErrBadBatch, h.Magic)
	case h.Length < BatchHeaderLen-batchLenOffset:
		return h, fmt.Errorf("%w: length %d shorter than a header", ErrBadBatch, h.Length)
	case h.Size() > len(b):
		return h, fmt.Errorf("%w: length %d past the %d bytes present", ErrBadBatch, h.Length, len(b)-batchLenOffset)
	case h.LastOffsetDelta < 0:
		return h, fmt.Errorf("%w: negative last offset delta %d", ErrBadBatch, h.LastOffsetDelta)
	}
	return h, nil
}

// CheckCRC verifies the CRC32C of the batch at the start of b, whose header
// is h.
func CheckCRC(h *BatchHeader, b []byte) error {
	if got := crc32.Checksum(b[21:h.Size()], crc32c); got != h.CRC {
		return fmt.Errorf("%w: stored %08x, computed %08x", ErrBatchCRC, h.CRC, got)
	}
	return nil
}

// SplitBatches splits a Records field (one or more concatenated v2
// batches) and calls fn with each batch's header and bytes. The bytes alias
// records.
func SplitBatches(records []byte, fn func(h BatchHeader, batch []byte) error) error {
	for len(records) > 0 {
		h, err := ParseBatchHeader(records)
		if err != nil {
			return err
		}
		if err := fn(h, records[:h.Size()]); err != nil {
			return err
		}
		records = records[h.Size():]
	}
	return nil
}
