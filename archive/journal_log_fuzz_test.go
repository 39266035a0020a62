package archive

import (
	"bytes"
	"testing"
	"time"
)

// FuzzBatchLogRecords feeds arbitrary bytes to the batch log's record
// parser, as opening a journal does with whatever a crash or a bad disk
// left at the end of a file. Invariants: no panic; a record is only ever
// accepted whole, within the bytes given; an accepted record re-encodes
// to exactly its bytes (so nothing about it went unchecked); a torn tail
// stops the walk.
func FuzzBatchLogRecords(f *testing.F) {
	l := &batchLog{active: &logFile{num: 1}}
	for i, data := range [][]byte{[]byte("batch"), bytes.Repeat([]byte{0xB1}, 300), nil} {
		b := Batch{Topic: "t", Partition: int32(i), BaseOffset: int64(i), AckTime: time.UnixMilli(1e12), LogAppendTime: -1, ClientID: "c", Data: data}
		l.add(batchKey(b.Topic, b.Partition, b.BaseOffset), appendBatchValueHeader(nil, &b), b.Data)
	}
	valid := append([]byte(nil), l.buf...)
	f.Add(valid)
	f.Add(valid[:len(valid)-3])
	f.Add(append(append([]byte(nil), valid...), 0xB1, 0, 0, 0, 200))
	f.Add([]byte{0xB1, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, in []byte) {
		for pos := 0; pos < len(in); {
			key, val, n, err := parseLogRecord(in[pos:])
			if err != nil {
				return
			}
			if n <= 0 || pos+n > len(in) {
				t.Fatalf("record of %d bytes at %d in %d", n, pos, len(in))
			}
			re := &batchLog{active: &logFile{num: 1}}
			re.add(key, val, nil)
			if !bytes.Equal(re.buf, in[pos:pos+n]) {
				t.Fatalf("record at %d re-encodes to other bytes", pos)
			}
			var b Batch
			_ = decodeBatchValue(val, &b) // must not panic
			pos += n
		}
	})
}
