package archive

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"strings"
	"testing"
	"time"
)

func TestSpans(t *testing.T) {
	for _, tc := range []struct {
		in, cut []span
		sub     string
	}{
		{[]span{{0, 10}}, nil, "[{0 10}]"},
		{[]span{{0, 10}}, []span{{2, 3}, {5, 7}}, "[{0 2} {3 5} {7 10}]"},
		{[]span{{0, 10}}, []span{{-5, 3}, {8, 20}}, "[{3 8}]"},
		{[]span{{0, 3}, {5, 9}}, []span{{2, 6}}, "[{0 2} {6 9}]"},
		{[]span{{0, 3}}, []span{{0, 3}}, "[]"},
	} {
		got := subtractSpans(tc.in, tc.cut)
		if s := fmt.Sprint(got); s != tc.sub && !(s == "[]" && tc.sub == "[]") {
			t.Errorf("%v - %v = %v, want %s", tc.in, tc.cut, got, tc.sub)
		}
	}
	if got := intersectSpans([]span{{0, 10}}, []span{{2, 3}, {5, 12}}); fmt.Sprint(got) != "[{2 3} {5 10}]" {
		t.Errorf("intersect: %v", got)
	}
	if got := unionSpans([]span{{5, 7}, {0, 2}, {2, 3}, {6, 9}}); fmt.Sprint(got) != "[{0 3} {5 9}]" {
		t.Errorf("union: %v", got)
	}
	if got := mergeLosses([]LossRange{{5, 9, "compacted"}, {0, 5, "deleted"}, {3, 4, "deleted"}, {9, 12, "compacted"}}); fmt.Sprint(got) != "[{0 5 deleted} {5 12 compacted}]" {
		t.Errorf("merge losses: %v", got)
	}
}

// TestApplyLosses: a known loss shows only where nothing is archived and
// removes the holes it explains; a partition known only by its loss gets
// an entry.
func TestApplyLosses(t *testing.T) {
	cov := []PartitionCoverage{{Topic: "a", Partition: 0, StartOffset: 10, EndOffset: 50, Batches: 3, Holes: [][2]int64{{20, 30}, {40, 45}}}}
	got := applyLosses(cov, map[tp][]LossRange{
		{"a", 0}: {{0, 12, LossDeleted}, {20, 25, LossCompacted}},
		{"b", 1}: {{0, 7, LossDeleted}},
	})
	if len(got) != 2 {
		t.Fatalf("%d partitions, want 2", len(got))
	}
	a, b := got[0], got[1]
	if fmt.Sprint(a.KnownLoss) != "[{0 10 deleted} {20 25 compacted}]" || fmt.Sprint(a.Holes) != "[[25 30] [40 45]]" {
		t.Errorf("a/0: losses %v holes %v", a.KnownLoss, a.Holes)
	}
	if b.Topic != "b" || fmt.Sprint(b.KnownLoss) != "[{0 7 deleted}]" || b.StartOffset != 7 || b.EndOffset != 7 || len(b.Holes) != 0 {
		t.Errorf("b/1: %+v", b)
	}
}

// TestIndexFormat2OnlyWithLosses: an index is written in format 1 unless
// its segment records a known loss, so archives without losses stay
// readable by an amber that knows only format 1; format 2 round-trips its
// losses blocks; an unknown format is refused with a hint.
func TestIndexFormat2OnlyWithLosses(t *testing.T) {
	ev := func(seq uint64, kind string, body any) *Event {
		return &Event{Seq: seq, Time: time.Unix(1, 0).UTC(), Kind: kind, Body: mustJSON(body)}
	}
	build := func(events ...*Event) (*Index, []byte) {
		sb := newSegmentBuilder("00000000000000aa", 0, nil)
		for _, e := range events {
			sb.addEvent(e)
		}
		_, idx := sb.finish()
		return &sb.idx, idx
	}
	format := func(idx []byte) uint64 {
		raw, _ := zdec.DecodeAll(idx[10:len(idx)-4], nil)
		return uint64(raw[0])
	}
	_, plain := build(ev(0, KindDeleteGroups, GroupDeletedEvent{Group: "g"}))
	if f := format(plain); f != 1 {
		t.Errorf("index without losses is format %d, want 1", f)
	}
	ix, withLoss := build(ev(0, KindKnownLoss, KnownLossEvent{Topic: "t", Partition: 2, Start: 0, End: 5, Reason: LossDeleted}),
		ev(1, KindKnownLoss, KnownLossEvent{Topic: "t", Partition: 2, Start: 9, End: 10, Reason: LossCompacted}))
	if f := format(withLoss); f != 2 {
		t.Errorf("index with losses is format %d, want 2", f)
	}
	got, err := decodeIndex(ix.Key, withLoss, nil)
	if err != nil {
		t.Fatal(err)
	}
	last := got.Blocks[len(got.Blocks)-1]
	if last.Kind != blockLosses || last.Topic != "t" || last.Partition != 2 || fmt.Sprint(last.Losses) != "[{0 5 deleted} {9 10 compacted}]" {
		t.Errorf("losses block %+v", last)
	}
	ix.Blocks = append(ix.Blocks[:0:0], ix.Blocks...)
	future := encodeIndex(ix, nil)
	raw, _ := zdec.DecodeAll(future[10:len(future)-4], nil)
	raw[0] = 3
	future = append(future[:10:10], zenc.EncodeAll(raw, nil)...)
	future = binary.BigEndian.AppendUint32(future, crc32.Checksum(future, crcTab))
	if _, err := decodeIndex(ix.Key, future, nil); !errors.Is(err, ErrFormat) || !strings.Contains(err.Error(), "upgrade amber") {
		t.Errorf("format 3: %v, want ErrFormat with a hint", err)
	}
}
