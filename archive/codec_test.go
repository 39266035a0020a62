package archive_test

import (
	"bytes"
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/amber-kafka/amber/archive"
	"github.com/amber-kafka/amber/protocol"
)

// TestRecordsRoundTrip: records decoded from a batch and encoded again,
// under every codec, decode to the same records (null key and value, empty
// value, duplicate headers, timestamps).
func TestRecordsRoundTrip(t *testing.T) {
	recs := []protocol.Record{
		{Offset: 10, Timestamp: 1000, Key: nil, Value: []byte("v"), Headers: []kmsg.Header{{Key: "h", Value: []byte("1")}, {Key: "h", Value: nil}}},
		{Offset: 11, Timestamp: 999, Key: []byte("k"), Value: nil},
		{Offset: 13, Timestamp: 1500, Key: []byte(""), Value: []byte{}},
		{Offset: 14, Timestamp: 1500, Key: []byte("big"), Value: bytes.Repeat([]byte("x"), 1<<20)},
	}
	for codec := int16(0); codec <= 4; codec++ {
		b, err := protocol.EncodeBatch(recs, 10, codec, 7, 1, 0, archive.Codec())
		if err != nil {
			t.Fatal(err)
		}
		h, err := protocol.ParseBatchHeader(b)
		if err != nil {
			t.Fatal(err)
		}
		if err := protocol.CheckCRC(&h, b); err != nil {
			t.Fatalf("codec %d: %v", codec, err)
		}
		got, err := protocol.DecodeRecords(b, &h, 10, archive.Codec())
		if err != nil {
			t.Fatalf("codec %d: %v", codec, err)
		}
		if len(got) != len(recs) {
			t.Fatalf("codec %d: %d records", codec, len(got))
		}
		for i := range recs {
			w, g := recs[i], got[i]
			if g.Offset != w.Offset || g.Timestamp != w.Timestamp || !bytes.Equal(g.Key, w.Key) || !bytes.Equal(g.Value, w.Value) ||
				(g.Key == nil) != (w.Key == nil) || (g.Value == nil) != (w.Value == nil) || len(g.Headers) != len(w.Headers) {
				t.Errorf("codec %d record %d: got %+v", codec, i, g.Offset)
			}
		}
		if h.Records() != 5 || h.NumRecords != 4 {
			t.Errorf("span %d records %d", h.Records(), h.NumRecords)
		}
	}
}
