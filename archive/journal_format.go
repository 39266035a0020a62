package archive

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"time"
)

// The journal is a Pebble database and a batch log (journal_log.go) in
// its directory. Keys sort so that a partition's batches are contiguous and
// in offset order, and events in arrival order. The prefixes, layouts and
// version bytes below are part of the format.
//
//	batch key    'b' | topic | 0x00 | partition uint32 BE | base offset uint64 BE [| suffix uint64 BE]
//	event key    'e' | sequence uint64 BE
//	meta key     'm' | name          ("m" "format" → one byte: journalFormat)
//	                                 ("m" "logpos" → file uint64 BE | offset uint64 BE:
//	                                  the batch log is pointed to up to here)
//	                                 ("m" "evseq", "m" "upseq": next event and upload numbers)
//	                                 ("m" "births" → JSON: each topic's last deletion, births.go)
//	                                 ("m" "topicids" → JSON: each topic's current id, births.go)
//
// Kafka topic names are [a-zA-Z0-9._-], so 0x00 cannot occur in a topic.
// The suffix (a unix ns time) tells apart two different batches at one
// offset: a topic deleted and created again under its name before the
// first one's batches were uploaded.
//
// Formats 2 and 3 keep, under a batch key, a pointer to the batch's record
// in the batch log, whose body holds the key and the batch value below
// (the two differ in the log's files: journal_log.go):
//
//	batch pointer
//	+------+----------------+----------------+---------------+-------------+
//	| 0x02 | log file       | record offset  | record size   | data length |
//	| ver  | uint64 BE      | uint64 BE      | uint32 BE     | uint32 BE   |
//	+------+----------------+----------------+---------------+-------------+
//
// Format 1 kept the batch value itself under the key; a format 1 journal
// is read as it is and upgraded when a proxy opens it (new batches go to
// the log, old values stay until uploaded).
//
//	batch value
//	+------+-----------+---------------+-------------+----------+--------------+
//	| 0x01 | ack time  | append time   | client id   | client   | record batch |
//	| ver  | int64 BE  | int64 BE      | length      | id bytes | as the client|
//	|      | unix µs   | unix ms or -1 | uvarint     |          | sent it      |
//	+------+-----------+---------------+-------------+----------+--------------+
//
// The record batch is kept byte for byte as the client sent it: its
// FirstOffset is 0 (the key holds the offset the broker assigned) and its
// CRC is the client's. Append time is the broker's LogAppendTime for
// topics that use it, else -1.
//
//	event value
//	+------+-----------+-------------+------+-------------+--------+----------+
//	| 0x01 | time      | kind length | kind | client id   | client | body     |
//	| ver  | int64 BE  | uvarint     |      | len uvarint | id     | JSON     |
//	|      | unix µs   |             |      |             |        |          |
//	+------+-----------+-------------+------+-------------+--------+----------+
const (
	prefixBatch = 'b'
	prefixEvent = 'e'
	prefixMeta  = 'm'

	batchValueV1 = 0x01
	batchPtrV2   = 0x02
	batchPtrLen  = 1 + 8 + 8 + 4 + 4
	eventValueV1 = 0x01

	// journalFormat is stored under "mformat" and checked at open; this
	// amber also reads format 1 (batch values inline) and 2 (batch log
	// files without a header, never reused: journal_log.go).
	journalFormat = 3
)

func appendBatchPtr(dst []byte, p batchPtr) []byte {
	dst = append(dst, batchPtrV2)
	dst = binary.BigEndian.AppendUint64(dst, p.file)
	dst = binary.BigEndian.AppendUint64(dst, uint64(p.off))
	dst = binary.BigEndian.AppendUint32(dst, p.size)
	return binary.BigEndian.AppendUint32(dst, p.dataLen)
}

// parseBatchPtr reads a format 2 pointer; ok is false for a format 1
// inline value.
func parseBatchPtr(v []byte) (p batchPtr, ok bool, err error) {
	if len(v) == 0 || v[0] != batchPtrV2 {
		return p, false, nil
	}
	if len(v) != batchPtrLen {
		return p, false, fmt.Errorf("%w: batch pointer of %d bytes", ErrFormat, len(v))
	}
	p.file = binary.BigEndian.Uint64(v[1:])
	p.off = int64(binary.BigEndian.Uint64(v[9:]))
	p.size = binary.BigEndian.Uint32(v[17:])
	p.dataLen = binary.BigEndian.Uint32(v[21:])
	if p.off < 0 || p.size < logRecordHeader {
		return p, false, fmt.Errorf("%w: batch pointer %+v", ErrFormat, p)
	}
	return p, true, nil
}

func batchKey(topic string, partition int32, offset int64) []byte {
	return appendBatchKey(make([]byte, 0, 1+len(topic)+1+4+8), topic, partition, offset)
}

func appendBatchKey(k []byte, topic string, partition int32, offset int64) []byte {
	k = append(k, prefixBatch)
	k = append(k, topic...)
	k = append(k, 0)
	k = binary.BigEndian.AppendUint32(k, uint32(partition))
	return binary.BigEndian.AppendUint64(k, uint64(offset))
}

func parseBatchKey(k []byte) (topic string, partition int32, offset int64, err error) {
	if len(k) < 1+1+12 || k[0] != prefixBatch {
		return "", 0, 0, fmt.Errorf("%w: batch key %x", ErrFormat, k)
	}
	i := bytes.IndexByte(k[1:], 0)
	if i < 0 || (len(k) != 1+i+1+12 && len(k) != 1+i+1+12+8) {
		return "", 0, 0, fmt.Errorf("%w: batch key %x", ErrFormat, k)
	}
	rest := k[1+i+1:]
	return string(k[1 : 1+i]), int32(binary.BigEndian.Uint32(rest)), int64(binary.BigEndian.Uint64(rest[4:])), nil
}

func eventKey(seq uint64) []byte {
	return binary.BigEndian.AppendUint64([]byte{prefixEvent}, seq)
}

// appendBatchValueHeader appends a batch value up to its record batch,
// which the caller appends (or copies in place).
func appendBatchValueHeader(dst []byte, b *Batch) []byte {
	dst = append(dst, batchValueV1)
	dst = binary.BigEndian.AppendUint64(dst, uint64(b.AckTime.UnixMicro()))
	dst = binary.BigEndian.AppendUint64(dst, uint64(b.LogAppendTime))
	dst = binary.AppendUvarint(dst, uint64(len(b.ClientID)))
	return append(dst, b.ClientID...)
}

// decodeBatchValue fills b's value fields from v. b.Data aliases v.
func decodeBatchValue(v []byte, b *Batch) error {
	if len(v) < 1+16+1 || v[0] != batchValueV1 {
		return fmt.Errorf("%w: batch value version %x", ErrFormat, v[:min(1, len(v))])
	}
	b.AckTime = time.UnixMicro(int64(binary.BigEndian.Uint64(v[1:]))).UTC()
	b.LogAppendTime = int64(binary.BigEndian.Uint64(v[9:]))
	n, w := binary.Uvarint(v[17:])
	if w <= 0 || uint64(len(v)-17-w) < n {
		return fmt.Errorf("%w: batch value client id", ErrFormat)
	}
	b.ClientID = string(v[17+w : 17+w+int(n)])
	b.Data = v[17+w+int(n):]
	return nil
}

func appendEventValue(dst []byte, e *Event) []byte {
	dst = append(dst, eventValueV1)
	dst = binary.BigEndian.AppendUint64(dst, uint64(e.Time.UnixMicro()))
	dst = binary.AppendUvarint(dst, uint64(len(e.Kind)))
	dst = append(dst, e.Kind...)
	dst = binary.AppendUvarint(dst, uint64(len(e.ClientID)))
	dst = append(dst, e.ClientID...)
	return append(dst, e.Body...)
}

func decodeEventValue(v []byte, e *Event) error {
	if len(v) < 1+8 || v[0] != eventValueV1 {
		return fmt.Errorf("%w: event value version", ErrFormat)
	}
	e.Time = time.UnixMicro(int64(binary.BigEndian.Uint64(v[1:]))).UTC()
	rest := v[9:]
	str := func() (string, bool) {
		n, w := binary.Uvarint(rest)
		if w <= 0 || uint64(len(rest)-w) < n {
			return "", false
		}
		s := string(rest[w : w+int(n)])
		rest = rest[w+int(n):]
		return s, true
	}
	var ok1, ok2 bool
	e.Kind, ok1 = str()
	e.ClientID, ok2 = str()
	if !ok1 || !ok2 {
		return fmt.Errorf("%w: event value", ErrFormat)
	}
	e.Body = append([]byte(nil), rest...)
	return nil
}
