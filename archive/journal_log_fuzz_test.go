package archive

import (
	"bytes"
	"errors"
	"testing"
	"time"
)

// FuzzBatchLogRecords feeds arbitrary bytes to the batch log's record
// parser, as opening a journal does with whatever a crash, a bad disk or a
// reused file left at the end of a file; both kinds of file (format 3,
// with a salted CRC, and format 2). Invariants: no panic; a record is only
// ever accepted whole, within the bytes given; an accepted record
// re-encodes to exactly its bytes (so nothing about it went unchecked); a
// torn tail or an end record stops the walk.
func FuzzBatchLogRecords(f *testing.F) {
	const seed = 0x5eed5eed
	kinds := []*logFile{{num: 1, magic: logRecordMagic, seed: seed}, {num: 1, magic: logRecordMagicV2}}
	for _, kind := range kinds {
		l := &batchLog{active: kind}
		for i, data := range [][]byte{[]byte("batch"), bytes.Repeat([]byte{0xB2}, 300), nil} {
			b := Batch{Topic: "t", Partition: int32(i), BaseOffset: int64(i), AckTime: time.UnixMilli(1e12), LogAppendTime: -1, ClientID: "c", Data: data}
			l.add(batchKey(b.Topic, b.Partition, b.BaseOffset), appendBatchValueHeader(nil, &b), b.Data)
		}
		valid := append([]byte(nil), l.buf...)
		f.Add(valid)
		f.Add(valid[:len(valid)-3])
		f.Add(append(append([]byte(nil), valid...), kind.magic, 0, 0, 0, 200))
		f.Add(appendLogEnd(append([]byte(nil), valid...), seed))
	}
	f.Add([]byte{0xB2, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, in []byte) {
		for _, kind := range kinds {
			for pos := 0; pos < len(in); {
				key, val, n, err := parseLogRecord(in[pos:], kind.magic, kind.seed)
				if errors.Is(err, errLogEnd) {
					if kind.magic != logRecordMagic || n != logRecordHeader || !bytes.Equal(in[pos:pos+n], appendLogEnd(nil, kind.seed)) {
						t.Fatalf("end record at %d is not one", pos)
					}
					break
				}
				if err != nil {
					break
				}
				if n <= 0 || pos+n > len(in) {
					t.Fatalf("record of %d bytes at %d in %d", n, pos, len(in))
				}
				re := &batchLog{active: kind}
				re.add(key, val, nil)
				if !bytes.Equal(re.buf, in[pos:pos+n]) {
					t.Fatalf("record at %d re-encodes to other bytes", pos)
				}
				var b Batch
				_ = decodeBatchValue(val, &b) // must not panic
				pos += n
			}
		}
	})
}
