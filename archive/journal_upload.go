package archive

import (
	"encoding/binary"
	"fmt"

	"github.com/cockroachdb/pebble/v2"
)

// The journal side of uploading: what to upload next, and forgetting it
// once the store has confirmed it. Only the uploader calls these, holding
// uploadSem.

// uploadSeq is the next upload number of this writer.
func (j *Journal) uploadSeq() (uint64, error) { return j.metaUint64("upseq") }

// fillCursor is where the next fill of one Uploader.Flush starts: just
// after the last batch and the last event an earlier fill of the same
// flush took. Every key before it was either taken (and is deleted once
// uploaded) or committed after the flush began; the next flush, which
// starts from the beginning, takes those.
//
// Without it every fill started at the journal's first key and Pebble
// stepped over the tombstones of everything the flush had uploaded so far
// (deleted, not yet compacted away), reading their blocks: quadratic in
// the segments of one flush. DeleteRange would hide them too, but a range
// over uploaded keys of a partition can cover a batch committed between
// them after the fill (a late or retried batch), which would be deleted
// unuploaded. Point deletes and a cursor cannot lose anything.
type fillCursor struct {
	batch []byte // the last batch key taken; nil: from the first
	event []byte // the last event key taken; nil: from the first
}

// after is the smallest key greater than k under prefix p: k with a 0x00
// appended, or the prefix itself when nothing was taken yet.
func after(k []byte, p byte) []byte {
	if k == nil {
		return []byte{p}
	}
	return append(k[:len(k):len(k)], 0)
}

// fill adds journaled batches, then events, from cur on to b until it
// holds about maxBytes, returns the keys it took and their batch bytes,
// and moves cur past them.
func (j *Journal) fill(b *segmentBuilder, maxBytes int, cur *fillCursor) (keys [][]byte, batchBytes int64, err error) {
	it, err := j.db.NewIter(&pebble.IterOptions{LowerBound: after(cur.batch, prefixBatch), UpperBound: []byte{prefixBatch + 1}})
	if err != nil {
		return nil, 0, err
	}
	var jb Batch
	for it.First(); it.Valid() && b.size() < maxBytes; it.Next() {
		if jb.Topic, jb.Partition, jb.BaseOffset, err = parseBatchKey(it.Key()); err != nil {
			break
		}
		var v []byte
		if v, err = it.ValueAndErr(); err != nil {
			break
		}
		if err = j.decodeStoredBatch(v, &jb, &j.fillBuf); err != nil {
			break
		}
		if err = b.addBatch(&jb); err != nil {
			break
		}
		keys = append(keys, append([]byte(nil), it.Key()...))
		batchBytes += int64(len(jb.Data))
	}
	if err == nil {
		err = it.Error()
	}
	it.Close()
	if err != nil {
		return nil, 0, err
	}
	nb := len(keys)
	if b.size() < maxBytes {
		err = j.eventsFrom(after(cur.event, prefixEvent), func(ev *Event) error {
			if b.size() >= maxBytes {
				return errStop
			}
			b.addEvent(ev)
			keys = append(keys, eventKey(ev.Seq))
			return nil
		})
		if err == errStop {
			err = nil
		}
		if err != nil {
			return nil, 0, err
		}
	}
	if nb > 0 {
		cur.batch = keys[nb-1]
	}
	if len(keys) > nb {
		cur.event = keys[len(keys)-1]
	}
	return keys, batchBytes, nil
}

// eventsFrom calls fn with every journaled event whose key is at least
// lower, in order.
func (j *Journal) eventsFrom(lower []byte, fn func(*Event) error) error {
	it, err := j.reader().NewIter(&pebble.IterOptions{LowerBound: lower, UpperBound: []byte{prefixEvent + 1}})
	if err != nil {
		return err
	}
	defer it.Close()
	for it.First(); it.Valid(); it.Next() {
		var e Event
		k := it.Key()
		if len(k) != 9 {
			return ErrFormat
		}
		e.Seq = binary.BigEndian.Uint64(k[1:])
		v, err := it.ValueAndErr()
		if err != nil {
			return err
		}
		if err := decodeEventValue(v, &e); err != nil {
			return err
		}
		if err := fn(&e); err != nil {
			return err
		}
	}
	return it.Error()
}

// markUploaded deletes keys, which the store now holds, and records the
// next upload number, in one synced batch.
func (j *Journal) markUploaded(keys [][]byte, batchBytes int64, nextSeq uint64) error {
	wb := j.db.NewBatch()
	defer wb.Close()
	released := map[uint64]int64{} // batch log files, and how many of their batches go
	for _, k := range keys {
		if k[0] == prefixBatch {
			v, closer, err := j.db.Get(k)
			if err != nil {
				return fmt.Errorf("look up uploaded batch: %w", err)
			}
			p, isPtr, err := parseBatchPtr(v)
			closer.Close()
			if err != nil {
				return err
			}
			if isPtr {
				released[p.file]++
			}
		}
		if err := wb.Delete(k, nil); err != nil {
			return err
		}
	}
	if err := wb.Set(metaKey("upseq"), binary.BigEndian.AppendUint64(nil, nextSeq), nil); err != nil {
		return err
	}
	if err := wb.Commit(pebble.Sync); err != nil {
		return err
	}
	j.backlog.Add(-batchBytes)
	for file, n := range released {
		j.blog.addLive(file, -n) // a file no batch needs any more is removed
	}
	return nil
}

// skipSeq records that an upload number is taken (an object of an earlier
// run holds it) without uploading anything.
func (j *Journal) skipSeq(nextSeq uint64) error {
	return j.db.Set(metaKey("upseq"), binary.BigEndian.AppendUint64(nil, nextSeq), pebble.Sync)
}
