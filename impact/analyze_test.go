package impact

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/amber-kafka/amber/archive"
	"github.com/amber-kafka/amber/archive/memstore"
)

// t0 is the synthetic history's epoch; at(n) is n seconds later.
var t0 = time.Date(2026, 11, 21, 14, 0, 0, 0, time.UTC)

func at(n int) time.Time { return t0.Add(time.Duration(n) * time.Second) }

// gappedBatch encodes a v2 batch whose records sit at the given offset
// deltas, spanning span offsets (as compaction leaves a batch).
func gappedBatch(deltas []int32, span int32) []byte {
	var recs []byte
	for _, d := range deltas {
		r := kmsg.Record{OffsetDelta: d, Value: []byte("v")}
		r.Length = int32(len(r.AppendTo(nil)) - 1)
		recs = r.AppendTo(recs)
	}
	b := kmsg.RecordBatch{PartitionLeaderEpoch: -1, Magic: 2, LastOffsetDelta: span - 1, ProducerID: -1, ProducerEpoch: -1,
		FirstSequence: -1, NumRecords: int32(len(deltas)), Records: recs}
	raw := b.AppendTo(nil)
	binary.BigEndian.PutUint32(raw[8:], uint32(len(raw)-12))
	binary.BigEndian.PutUint32(raw[17:], crc32.Checksum(raw[21:], crc32.MakeTable(crc32.Castagnoli)))
	return raw
}

func fullBatch(n int32) []byte {
	d := make([]int32, n)
	for i := range d {
		d[i] = int32(i)
	}
	return gappedBatch(d, n)
}

func event(t time.Time, kind string, body any) archive.Event {
	b, _ := json.Marshal(body)
	return archive.Event{Time: t, Kind: kind, Body: b}
}

func commit(t time.Time, group, topic string, offset int64) archive.Event {
	return event(t, archive.KindOffsetCommit, archive.OffsetCommitEvent{Group: group, Topic: topic, Offset: offset})
}

func txnCommitEvent(t time.Time, group string, offset, pid int64, epoch int16) archive.Event {
	return event(t, archive.KindTxnOffsetCommit, archive.OffsetCommitEvent{Group: group, Topic: "t", Offset: offset, ProducerID: pid, ProducerEpoch: epoch})
}

func endTxn(t time.Time, pid int64, epoch int16, commit bool) archive.Event {
	return event(t, archive.KindEndTxn, archive.EndTxnEvent{ProducerID: pid, ProducerEpoch: epoch, Commit: commit})
}

func snapshot(t time.Time, group string, offset int64) archive.Event {
	return event(t, archive.KindGroupOffsetsSnapshot, archive.GroupOffsetsSnapshotEvent{Group: group,
		Offsets: []archive.GroupOffset{{Topic: "t", Offset: offset}}})
}

// The synthetic partition t/0:
//
//	offsets 0-4   ack at(0)   before the window
//	offsets 5-9   ack at(10)  window start
//	offsets 10-14 ack at(20)  3 records, at 10, 12 and 14 (compacted)
//	offset  15                a transaction marker: not archived
//	offsets 16-19 ack at(30)  window end
//	offsets 20-24 ack at(40)  after
//
// Window at(10)..at(30): [5, 20), 12 records, 1 offset unarchived.
var (
	synthBatches = []archive.Batch{
		{Topic: "t", BaseOffset: 0, AckTime: at(0), Data: fullBatch(5)},
		{Topic: "t", BaseOffset: 5, AckTime: at(10), Data: fullBatch(5)},
		{Topic: "t", BaseOffset: 10, AckTime: at(20), Data: gappedBatch([]int32{0, 2, 4}, 5)},
		{Topic: "t", BaseOffset: 16, AckTime: at(30), Data: fullBatch(4)},
		{Topic: "t", BaseOffset: 20, AckTime: at(40), Data: fullBatch(5)},
		{Topic: "u", BaseOffset: 0, AckTime: at(20), Data: fullBatch(5)},
	}
	synthEvents = []archive.Event{
		// rewound: past 18, then back to 7.
		commit(at(21), "rewound", "t", 18),
		commit(at(22), "rewound", "t", 7),
		// gapcut: stops inside the compacted batch, past 10 and 12.
		commit(at(23), "gapcut", "t", 13),
		// txn: an aborted commit to 20, then a committed one to 9.
		txnCommitEvent(at(24), "txn", 20, 7, 0),
		endTxn(at(25), 7, 0, false),
		txnCommitEvent(at(26), "txn", 9, 7, 0),
		endTxn(at(27), 7, 0, true),
		// pending: its transaction has no outcome; a snapshot saw 12.
		txnCommitEvent(at(28), "pending", 25, 8, 0),
		snapshot(at(50), "pending", 12),
		// epochs: an EndTxn before the commit, and one of another epoch.
		endTxn(at(29), 9, 1, true),
		txnCommitEvent(at(31), "epochs", 30, 9, 1),
		endTxn(at(32), 9, 0, true),
		// snaps: known only from snapshots.
		snapshot(at(45), "snaps", 3),
		snapshot(at(55), "snaps", 25),
		// early: committed before the window, never after.
		commit(at(5), "early", "t", 5),
		// other: commits on another topic only.
		commit(at(33), "other", "u", 5),
		// v6: a commit archived with no topic name.
		event(at(34), archive.KindTxnOffsetCommit, archive.OffsetCommitEvent{Group: "v6", Offset: 19, ProducerID: 10}),
		endTxn(at(35), 10, 0, true),
	}
)

// Where synthOptions puts the synthetic history.
const (
	inArchive = "archive" // uploaded
	inJournal = "journal" // left in the journal (Options.Journal), over an empty archive
	inBoth    = "both"    // uploaded, and still in a journal (a crash before the journal's deletion)
)

// synthOptions builds the synthetic archive.
func synthOptions(t *testing.T, where string, batches []archive.Batch, events []archive.Event) Options {
	t.Helper()
	ctx := context.Background()
	journal := func() *archive.Journal {
		j, err := archive.OpenJournal(archive.JournalOptions{Dir: filepath.Join(t.TempDir(), "j")})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { j.Close() })
		done, err := j.Append(batches, events)
		if err != nil {
			t.Fatal(err)
		}
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		return j
	}
	j := journal()
	store := memstore.New()
	if where != inJournal {
		u, err := archive.NewUploader(archive.UploaderOptions{Journal: j, Store: store, WriterID: "00000000000000bb"})
		if err != nil {
			t.Fatal(err)
		}
		if err := u.Flush(ctx); err != nil {
			t.Fatal(err)
		}
	}
	a, err := archive.OpenArchive(ctx, store, nil)
	if err != nil {
		t.Fatal(err)
	}
	o := Options{Archive: a, Topics: []string{"t"}, Since: at(10), Until: at(30)}
	switch where {
	case inJournal:
		o.Journal = j
	case inBoth:
		o.Journal = journal()
	}
	return o
}

func describe(p GroupPartition) string {
	s := fmt.Sprintf("%s %s committed=%d highest=%d records=%d", p.Status, p.Source, p.Committed, p.Highest, p.Records)
	if p.Consumed != nil {
		s += fmt.Sprintf(" [%d,%d)", p.Consumed.From, p.Consumed.To)
	}
	for _, x := range []struct {
		name string
		t    *time.Time
	}{{"entered", p.EnteredAt}, {"passed", p.PassedAt}} {
		if x.t != nil {
			s += fmt.Sprintf(" %s=%s", x.name, x.t.Sub(t0))
		}
	}
	if p.AbortedTxnCommits+p.PendingTxnCommits > 0 {
		s += fmt.Sprintf(" aborted=%d pending=%d", p.AbortedTxnCommits, p.PendingTxnCommits)
	}
	return s
}

// TestImpactSynthetic checks every rule on a hand-built history, read
// from an archive, from a journal, and from both holding the same copy.
func TestImpactSynthetic(t *testing.T) {
	want := map[string]string{
		"rewound": "partial commits committed=7 highest=18 records=10 [5,18) entered=21s",
		"gapcut":  "partial commits committed=13 highest=13 records=7 [5,13) entered=23s",
		"txn":     "partial commits committed=9 highest=9 records=4 [5,9) entered=27s aborted=1 pending=0",
		"pending": "partial snapshots committed=12 highest=12 records=6 [5,12) entered=50s aborted=0 pending=1",
		"epochs":  "none commits committed=-1 highest=-1 records=0 aborted=0 pending=1",
		"snaps":   "all snapshots committed=25 highest=25 records=12 [5,20) entered=55s passed=55s",
		"early":   "none commits committed=5 highest=5 records=0",
	}
	for _, where := range []string{inArchive, inJournal, inBoth} {
		t.Run(where, func(t *testing.T) {
			o := synthOptions(t, where, synthBatches, synthEvents)
			rep, err := Analyze(context.Background(), o)
			if err != nil {
				t.Fatal(err)
			}
			if len(rep.Partitions) != 1 {
				t.Fatalf("partitions %+v", rep.Partitions)
			}
			w := rep.Partitions[0]
			if w.FromOffset != 5 || w.ToOffset != 20 || w.Records != 12 || w.Unarchived != 1 || !w.FirstAckTime.Equal(at(10)) || !w.LastAckTime.Equal(at(30)) {
				t.Errorf("window %+v", w)
			}
			got := map[string]string{}
			for _, g := range rep.Groups {
				if len(g.Partitions) != 1 {
					t.Fatalf("group %s: %+v", g.Group, g.Partitions)
				}
				got[g.Group] = describe(g.Partitions[0])
				if g.Records != g.Partitions[0].Records || g.Affected != (g.Records > 0) || g.WindowRecords != 12 {
					t.Errorf("group %s totals: %+v", g.Group, g)
				}
			}
			for g, w := range want {
				if got[g] != w {
					t.Errorf("%s:\n got %s\nwant %s", g, got[g], w)
				}
			}
			for g := range got {
				if _, ok := want[g]; !ok {
					t.Errorf("unexpected group %s: %s", g, got[g])
				}
			}
			if rep.CommitHistory != HistoryExact {
				t.Errorf("commit history %s", rep.CommitHistory)
			}
			notes := strings.Join(rep.Notes, "\n")
			for _, s := range []string{"only from backfill snapshots", "Group pending: 1 transactional commits have no outcome",
				"Group epochs: 1 transactional", "Group v6: 1 commits were archived without a topic name"} {
				if !strings.Contains(notes, s) {
					t.Errorf("notes lack %q:\n%s", s, notes)
				}
			}
		})
	}
}

// TestImpactNotes: what the report says when it cannot answer.
func TestImpactNotes(t *testing.T) {
	ctx := context.Background()
	t.Run("no history", func(t *testing.T) {
		rep, err := Analyze(ctx, synthOptions(t, inArchive, synthBatches, nil))
		if err != nil {
			t.Fatal(err)
		}
		if rep.CommitHistory != HistoryNone || len(rep.Groups) != 0 || len(rep.Notes) != 1 || rep.Notes[0] != noteNoHistory {
			t.Errorf("%+v", rep)
		}
		if !strings.Contains(noteNoHistory, "route consumers through an Amber proxy") || !strings.Contains(noteNoHistory, "coarser") {
			t.Error("the no-history note must say what to do")
		}
	})
	t.Run("snapshots only", func(t *testing.T) {
		rep, err := Analyze(ctx, synthOptions(t, inArchive, synthBatches, []archive.Event{snapshot(at(45), "snaps", 25)}))
		if err != nil {
			t.Fatal(err)
		}
		if rep.CommitHistory != HistorySnapshots || len(rep.Groups) != 1 || rep.Groups[0].Source != SourceSnapshots || rep.Notes[0] != noteSnapshots {
			t.Errorf("%+v", rep)
		}
	})
	t.Run("stale", func(t *testing.T) {
		rep, err := Analyze(ctx, synthOptions(t, inArchive, synthBatches, []archive.Event{commit(at(5), "early", "t", 5)}))
		if err != nil {
			t.Fatal(err)
		}
		if rep.CommitHistory != HistoryExact || len(rep.Notes) != 1 || !strings.Contains(rep.Notes[0], "before the window") {
			t.Errorf("%+v", rep)
		}
	})
	t.Run("empty window", func(t *testing.T) {
		o := synthOptions(t, inArchive, synthBatches, synthEvents)
		o.Since, o.Until = at(100), at(200)
		rep, err := Analyze(ctx, o)
		if err != nil {
			t.Fatal(err)
		}
		if len(rep.Partitions) != 0 || len(rep.Groups) != 0 || !strings.Contains(strings.Join(rep.Notes, ""), "No record of t was acknowledged") {
			t.Errorf("%+v", rep)
		}
	})
	t.Run("unknown group", func(t *testing.T) {
		o := synthOptions(t, inArchive, synthBatches, synthEvents)
		o.Group = "nobody"
		rep, err := Analyze(ctx, o)
		if err != nil {
			t.Fatal(err)
		}
		if len(rep.Groups) != 0 || !strings.Contains(strings.Join(rep.Notes, ""), "Group nobody has no archived commit") {
			t.Errorf("%+v", rep)
		}
	})
	t.Run("unknown topic", func(t *testing.T) {
		o := synthOptions(t, inArchive, synthBatches, nil)
		o.Topics = []string{"t", "nope", "neither"}
		_, err := Analyze(ctx, o)
		if !errors.Is(err, ErrUnknownTopic) || !strings.Contains(err.Error(), "nope, neither") || !strings.Contains(err.Error(), "amber ls") {
			t.Errorf("unknown topics: %v", err)
		}
	})
}

// TestImpactValidate reports every problem at once.
func TestImpactValidate(t *testing.T) {
	o := Options{Topics: []string{"a", "", "a"}, Until: at(0)}
	err := o.Validate()
	for _, s := range []string{"no archive", "empty topic name", "topic a given twice", "--since"} {
		if err == nil || !strings.Contains(err.Error(), s) {
			t.Errorf("Validate: %v; lacks %q", err, s)
		}
	}
	o = Options{Archive: &archive.Archive{}, Topics: []string{"a"}, Since: at(10), Until: at(0)}
	if err := o.Validate(); err == nil || !strings.Contains(err.Error(), "is before --since") {
		t.Errorf("until before since: %v", err)
	}
}

// TestImpactWindowNonMonotonicAcks: a batch inside the range is in the window
// whatever its ack time, since consumers read in offset order.
func TestImpactWindowNonMonotonicAcks(t *testing.T) {
	p := &partition{tp: tp{"t", 0}, batches: []batch{
		{base: 0, span: 2, records: 2, ack: at(0)},
		{base: 2, span: 2, records: 2, ack: at(12)},
		{base: 4, span: 2, records: 2, ack: at(9)}, // acknowledged "before" its predecessor
		{base: 6, span: 2, records: 2, ack: at(15)},
		{base: 8, span: 2, records: 2, ack: at(31)},
	}}
	w, ok := p.window(at(10), at(30))
	if !ok || w.FromOffset != 2 || w.ToOffset != 8 || w.Records != 6 || !w.FirstAckTime.Equal(at(9)) || !w.LastAckTime.Equal(at(15)) {
		t.Errorf("window %+v %v", w, ok)
	}
	if _, ok := p.window(at(16), at(30)); ok {
		t.Error("a window with no batch is not empty")
	}
}
