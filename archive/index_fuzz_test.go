package archive

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"testing"
	"time"

	"github.com/amber-kafka/amber/protocol"
)

// FuzzDecodeIndex: decodeIndex never panics on any bytes, and an index it
// accepts encodes back to one that decodes to the same blocks (losses
// blocks included). An input is either a whole index object or, to get
// past the CRC and zstd, an index body that the fuzz target wraps.
func FuzzDecodeIndex(f *testing.F) {
	for _, withLoss := range []bool{false, true} {
		sb := newSegmentBuilder("00000000000000aa", 3, nil)
		sb.addBatch(&Batch{Topic: "t", Partition: 1, BaseOffset: 7, AckTime: time.Unix(5, 0), LogAppendTime: -1, Data: testBatch()})
		sb.addEvent(&Event{Seq: 0, Time: time.Unix(6, 0), Kind: KindDeleteGroups, Body: mustJSON(GroupDeletedEvent{Group: "g"})})
		if withLoss {
			sb.addEvent(&Event{Seq: 1, Time: time.Unix(6, 0), Kind: KindKnownLoss, Body: mustJSON(KnownLossEvent{Topic: "t", Partition: 1, Start: 0, End: 7, Reason: LossDeleted})})
		}
		_, idx := sb.finish()
		f.Add(idx)
		body, _ := zdec.DecodeAll(idx[10:len(idx)-4], nil)
		f.Add(body)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if !bytes.HasPrefix(b, []byte(indexMagic)) {
			obj := append([]byte(indexMagic), 0, 0)
			obj = append(obj, zenc.EncodeAll(b, nil)...)
			b = binary.BigEndian.AppendUint32(obj, crc32.Checksum(obj, crcTab))
		}
		ix, err := decodeIndex("v1/idx/00000000000000aa/0000000000000003.idx", b, nil)
		if err != nil {
			return
		}
		again, err := decodeIndex(ix.Key, encodeIndex(ix, nil), nil)
		if err != nil {
			t.Fatalf("re-encoded index does not decode: %v", err)
		}
		if fmt.Sprint(again.Blocks) != fmt.Sprint(ix.Blocks) {
			t.Fatalf("blocks changed in a round trip:\n%v\n%v", ix.Blocks, again.Blocks)
		}
	})
}

// testBatch is a valid one-record v2 batch.
func testBatch() []byte {
	b, err := protocol.EncodeBatch([]protocol.Record{{Offset: 0, Timestamp: 5000, Key: []byte("k"), Value: []byte("v")}}, 0, 0, -1, -1, -1, nil)
	if err != nil {
		panic(err)
	}
	return b
}
