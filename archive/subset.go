package archive

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"
)

// Subsets: what an export (archive/export) takes of an upload when it is
// asked for some topics or a time window. An upload all of whose content
// is selected is copied as it is, byte for byte; one partly selected is
// rewritten as a derived upload holding only the selected batches and
// events, in the same format, under a writer id derived from the source
// writer and the selection (DerivedWriterID) and the source's upload
// number, so that exporting again with the same selection recognises
// what is already there by its key.

// Selection chooses batches by topic and acknowledge time, and the events
// that go with them. The zero Selection selects everything.
type Selection struct {
	// Topics, if any, are the topics selected (exact names).
	Topics []string
	// Since and Until, if set, bound the acknowledge time of the batches
	// selected: Since <= ack <= Until.
	Since, Until time.Time
}

// IsZero reports whether the selection selects everything.
func (s *Selection) IsZero() bool { return len(s.Topics) == 0 && s.Since.IsZero() && s.Until.IsZero() }

// String is the selection's canonical form (sorted topics, UTC times):
// what DerivedWriterID hashes.
func (s *Selection) String() string {
	topics := slices.Clone(s.Topics)
	slices.Sort(topics)
	topics = slices.Compact(topics)
	var b strings.Builder
	fmt.Fprintf(&b, "topics=%s", strings.Join(topics, ","))
	for _, t := range []struct {
		name string
		t    time.Time
	}{{"since", s.Since}, {"until", s.Until}} {
		if !t.t.IsZero() {
			fmt.Fprintf(&b, ";%s=%s", t.name, t.t.UTC().Format(time.RFC3339Nano))
		}
	}
	return b.String()
}

func (s *Selection) topic(t string) bool {
	return len(s.Topics) == 0 || slices.Contains(s.Topics, t)
}

// Batch reports whether a batch of topic acknowledged at ack is selected.
func (s *Selection) Batch(topic string, ack time.Time) bool {
	return s.topic(topic) && (s.Since.IsZero() || !ack.Before(s.Since)) && (s.Until.IsZero() || !ack.After(s.Until))
}

// Event decides what of an event goes with the selected batches; body is
// the event's body, narrowed for a group_offsets_snapshot to the selected
// topics' offsets. The rules:
//
//   - events after Until are left out, except end_txn: a transaction's
//     outcome can come after its last batch, and restore needs it to
//     know whether the batch committed;
//   - Since does not apply to events: a restore of the window needs the
//     history that leads up to it (the topic's creation and configs, the
//     group positions committed before it);
//   - with Topics, an event about a topic (commits, topic admin changes,
//     topic configs, deleted records, known losses, config snapshots) is
//     kept only for a selected topic; events about no topic (end_txn,
//     delete_groups, broker configs) are kept.
func (s *Selection) Event(ev *Event) (keep bool, body json.RawMessage) {
	if !s.Until.IsZero() && ev.Time.After(s.Until) && ev.Kind != KindEndTxn {
		return false, nil
	}
	if len(s.Topics) == 0 {
		return true, ev.Body
	}
	var about struct {
		Topic        string `json:"topic"`
		ResourceType string `json:"resource_type"`
		ResourceName string `json:"resource_name"`
	}
	switch ev.Kind {
	case KindOffsetCommit, KindTxnOffsetCommit, KindCreateTopics, KindDeleteTopics, KindCreatePartitions,
		KindDeleteRecords, KindKnownLoss, KindConfigSnapshot:
		if json.Unmarshal(ev.Body, &about) != nil || about.Topic == "" {
			return true, ev.Body // cannot tell (a topic deleted by id): keep
		}
		return s.topic(about.Topic), ev.Body
	case KindAlterConfigs, KindIncrementalAlterConfigs:
		if json.Unmarshal(ev.Body, &about) != nil || about.ResourceType != "topic" {
			return true, ev.Body
		}
		return s.topic(about.ResourceName), ev.Body
	case KindGroupOffsetsSnapshot:
		var g GroupOffsetsSnapshotEvent
		if json.Unmarshal(ev.Body, &g) != nil {
			return true, ev.Body
		}
		kept := g.Offsets[:0]
		for _, o := range g.Offsets {
			if s.topic(o.Topic) {
				kept = append(kept, o)
			}
		}
		if len(kept) == 0 {
			return false, nil
		}
		if len(kept) == len(g.Offsets) {
			return true, ev.Body
		}
		g.Offsets = kept
		return true, mustJSON(g)
	default:
		return true, ev.Body
	}
}

// DerivedWriterID is the writer id of the uploads derived from writer's
// under sel: 16 hex characters of a SHA-256 of both.
func DerivedWriterID(writer string, sel Selection) string {
	sum := sha256.Sum256([]byte("amber export subset\n" + writer + "\n" + sel.String()))
	return hex.EncodeToString(sum[:8])
}

// Subset is what a Selection takes of one upload.
type Subset struct {
	// Whole: everything in the upload is selected; copy its objects as
	// they are.
	Whole bool
	// Batches, Records and Events count what is selected.
	Batches, Records, Events int64
	// Segment and Index are the derived upload's objects, under
	// SegmentKey(Writer, Seq) and IndexKey(Writer, Seq), when the upload
	// is partly selected.
	Writer         string
	Seq            uint64
	Segment, Index []byte
}

// Empty reports whether nothing of the upload is selected.
func (s *Subset) Empty() bool { return !s.Whole && s.Batches == 0 && s.Events == 0 }

// SubsetUpload decides what sel takes of the upload ix (decoded with key,
// read from store) and, if that is only part of it, builds the derived
// upload: the selected batches, byte for byte with their offsets and
// times, and the selected events with their sequence numbers, encrypted
// with key if the source upload is. Only the blocks holding something
// selected are read (events blocks are read whenever a topic or Until
// filter could drop an event).
func SubsetUpload(ctx context.Context, store Store, key *Key, ix *Index, sel Selection) (*Subset, error) {
	a := &Archive{store: store, key: key}
	sub := &Subset{Writer: DerivedWriterID(ix.Writer, sel), Seq: ix.Seq}
	whole := true
	var wantBlocks []int
	for bi := range ix.Blocks {
		blk := &ix.Blocks[bi]
		switch blk.Kind {
		case blockBatches:
			n := 0
			for _, m := range blk.Batches {
				if sel.Batch(blk.Topic, m.AckTime) {
					n++
					sub.Batches++
					sub.Records += m.Records
				}
			}
			if n < len(blk.Batches) {
				whole = false
			}
			if n > 0 {
				wantBlocks = append(wantBlocks, bi)
			}
		case blockEvents:
			wantBlocks = append(wantBlocks, bi)
		}
	}
	// Events: read them unless nothing can be dropped.
	type evBlock struct {
		bi     int
		events []Event
	}
	var evs []evBlock
	for _, bi := range wantBlocks {
		blk := &ix.Blocks[bi]
		if blk.Kind != blockEvents {
			continue
		}
		if len(sel.Topics) == 0 && (sel.Until.IsZero() || !blk.LastTime.After(sel.Until)) {
			sub.Events += blk.Events
			evs = append(evs, evBlock{bi: bi, events: nil}) // all kept, read only if derived
			continue
		}
		payload, err := a.readBlock(ctx, ix, bi)
		if err != nil {
			return nil, err
		}
		eb := evBlock{bi: bi, events: []Event{}}
		var n int64
		err = forEachEventEntry(payload, func(ev *Event) error {
			n++
			keep, body := sel.Event(ev)
			if !keep {
				return nil
			}
			if !bytes.Equal(body, ev.Body) {
				whole = false
			}
			e := *ev
			e.Body = slices.Clone(body)
			e.ClientID = strings.Clone(ev.ClientID)
			eb.events = append(eb.events, e)
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("%s block %d: %w", ix.Segment, bi, err)
		}
		if int64(len(eb.events)) < n {
			whole = false
		}
		sub.Events += int64(len(eb.events))
		evs = append(evs, eb)
	}
	if sub.Batches == 0 && sub.Events == 0 {
		return sub, nil
	}
	if whole {
		sub.Whole = true
		return sub, nil
	}

	// Partly selected: build the derived upload, blocks in the source's
	// order. Its creation time is the source's, so that an unencrypted
	// derived upload is the same bytes every time it is built.
	var sealKey *Key
	if ix.KeyID != "" {
		sealKey = key
	}
	b := newSegmentBuilder(sub.Writer, sub.Seq, sealKey)
	b.idx.Created = ix.Created
	for _, bi := range wantBlocks {
		blk := &ix.Blocks[bi]
		if blk.Kind != blockBatches {
			continue
		}
		payload, err := a.readBlock(ctx, ix, bi)
		if err != nil {
			return nil, err
		}
		err = forEachBatchEntry(blk, payload, func(bt *Batch) error {
			if !sel.Batch(bt.Topic, bt.AckTime) {
				return nil
			}
			return b.addBatch(bt)
		})
		if err != nil {
			return nil, fmt.Errorf("%s block %d: %w", ix.Segment, bi, err)
		}
	}
	for _, eb := range evs {
		if eb.events == nil {
			payload, err := a.readBlock(ctx, ix, eb.bi)
			if err != nil {
				return nil, err
			}
			if err := forEachEventEntry(payload, func(ev *Event) error { b.addEvent(ev); return nil }); err != nil {
				return nil, fmt.Errorf("%s block %d: %w", ix.Segment, eb.bi, err)
			}
			continue
		}
		for i := range eb.events {
			b.addEvent(&eb.events[i])
		}
	}
	sub.Segment, sub.Index = b.finish()
	return sub, nil
}

// DecodeIndex parses an index object stored under name; key decrypts an
// encrypted one. A wrong or missing key is an error matching ErrWrongKey
// (the index's checksum has then been checked already).
func DecodeIndex(name string, b []byte, key *Key) (*Index, error) {
	return decodeIndex(name, b, key)
}

// IndexKeyID returns the id of the key an index object was encrypted with
// ("" for a plaintext index, or bytes that are no index), read from its
// plaintext header without decrypting anything.
func IndexKeyID(b []byte) string {
	if len(b) < len(indexMagic)+2 || string(b[:len(indexMagic)]) != indexMagic {
		return ""
	}
	flags, n := b[8], int(b[9])
	if flags&flagEncrypted == 0 || 10+n > len(b) {
		return ""
	}
	return string(b[10 : 10+n])
}
