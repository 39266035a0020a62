package archive

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/cockroachdb/pebble/v2"
)

// The journal's group commit: what the writer goroutine (Journal.loop)
// does with everything appended since its last commit.

func (j *Journal) commit(batches []Batch, events []Event) error {
	if errp := j.failed.Load(); errp != nil {
		return *errp
	}
	events, topicIDs := j.takeTopicIDs(events) // kept as meta, not as events
	if len(batches) > 0 && j.blog.needRotate() {
		// Move logpos to the new file, synced, first: that makes Pebble's
		// pointers into the full file durable (the recovery scan only
		// reads from the durable logpos's file on), and keeps every spare
		// the new file may reuse before logpos (journal_log.go).
		next := j.blog.nextNum()
		if err := j.db.Set(metaKey("logpos"), logPos(next, logHeaderSize), pebble.Sync); err != nil {
			return fmt.Errorf("sync journal before starting a new batch log file: %w", err)
		}
		if err := j.blog.rotate(next); err != nil {
			j.fail(err)
			return err
		}
	}
	wb := j.db.NewBatch()
	defer wb.Close()
	j.blog.discardGroup() // whatever a build that returned early left
	var (
		key, val  []byte
		set       []int               // indexes of the batches this commit writes
		seen      map[string][][]byte // their data by key (without suffix), built only once a batch needs a lookup
		stored    []byte              // a stored batch read back to compare
		committed int64
		nbytes    int64
		dups      int64
	)
	for i := range batches {
		b := &batches[i]
		key = appendBatchKey(key[:0], b.Topic, b.Partition, b.BaseOffset)
		p := tp{b.Topic, b.Partition}
		if top, ok := j.highest[p]; ok && b.BaseOffset <= top {
			// Not above what is journaled: an idempotent retry the broker
			// acknowledged at the same offset, an older batch whose
			// response overtook it, or a topic deleted and created again
			// under the name. Look, in this commit and in Pebble: the same
			// key with the same batch is a retry, stored once; with
			// another batch it is another topic's, stored under the key
			// with a suffix (journal_format.go).
			if seen == nil {
				seen = make(map[string][][]byte, len(set))
				for _, k := range set {
					bk := &batches[k]
					base := string(batchKey(bk.Topic, bk.Partition, bk.BaseOffset))
					seen[base] = append(seen[base], bk.Data)
				}
			}
			base := string(key)
			dup := false
			for _, data := range seen[base] {
				dup = dup || sameBatch(data, b.Data)
			}
			if !dup {
				var found bool
				var err error
				dup, found, err = j.storedCopy(key, b.Data, &stored)
				if err != nil {
					return fmt.Errorf("check batch %s/%d@%d: %w", b.Topic, b.Partition, b.BaseOffset, err)
				}
				if !dup && (found || len(seen[base]) > 0) {
					key = binary.BigEndian.AppendUint64(key, uint64(time.Now().UnixNano()))
				}
			}
			if dup {
				dups++
				continue
			}
			seen[base] = append(seen[base], b.Data)
		} else {
			// Raised before the commit is known to succeed: if it fails,
			// a retry of this batch takes the lookup above and is written.
			j.highest[p] = b.BaseOffset
			if seen != nil {
				seen[string(key)] = append(seen[string(key)], b.Data)
			}
		}
		set = append(set, i)
		// The batch goes to the log; Pebble gets a pointer to it.
		val = appendBatchValueHeader(val[:0], b)
		ptr := j.blog.add(key, val, b.Data)
		val = appendBatchPtr(val[:0], ptr)
		if err := wb.Set(key, val, nil); err != nil {
			return err
		}
		committed++
		nbytes += int64(len(b.Data))
	}
	seq := j.nextSeq
	for i := range events {
		val = appendEventValue(val[:0], &events[i])
		if err := wb.Set(eventKey(seq), val, nil); err != nil {
			return err
		}
		seq++
	}
	if len(events) > 0 {
		// Kept apart from the keys, which uploads delete.
		if err := wb.Set(metaKey("evseq"), binary.BigEndian.AppendUint64(nil, seq), nil); err != nil {
			return err
		}
	}
	if topicIDs != nil {
		if err := setMetaJSON(wb, "topicids", topicIDs); err != nil {
			return err
		}
	}
	births, newBirths := j.birthsAfter(events)
	if newBirths {
		if err := setMetaJSON(wb, "births", births); err != nil {
			return err
		}
	}
	start := time.Now()
	j.commitStart.Store(start.UnixNano())
	err := j.commitGroup(wb, committed, len(events) > 0)
	j.commitStart.Store(0)
	j.stats.commitNanos.Add(int64(time.Since(start)))
	if err != nil {
		return err
	}
	j.nextSeq = seq
	j.topics.Lock()
	if newBirths {
		j.topics.births = births
	}
	if topicIDs != nil {
		j.topics.ids = topicIDs
	}
	j.topics.Unlock()
	j.backlog.Add(nbytes)
	j.stats.commits.Add(1)
	j.stats.batches.Add(committed)
	j.stats.batchBytes.Add(nbytes)
	j.stats.duplicates.Add(dups)
	j.stats.events.Add(int64(len(events)))
	return nil
}

// storedCopy looks at the batches journaled under key (and key with any
// suffix): dup if one of them is data, found if there is any.
func (j *Journal) storedCopy(key, data []byte, buf *[]byte) (dup, found bool, err error) {
	upper := append(append([]byte(nil), key...), 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff)
	it, err := j.db.NewIter(&pebble.IterOptions{LowerBound: key, UpperBound: upper})
	if err != nil {
		return false, false, err
	}
	defer it.Close()
	for it.First(); it.Valid(); it.Next() {
		found = true
		v, err := it.ValueAndErr()
		if err != nil {
			return false, true, err
		}
		var sb Batch
		if err := j.decodeStoredBatch(v, &sb, buf); err != nil {
			if errors.Is(err, errLogFileGone) {
				continue // uploaded meanwhile
			}
			return false, true, err
		}
		if sameBatch(sb.Data, data) {
			return true, true, nil
		}
	}
	return false, found, it.Error()
}

// sameBatch reports whether two copies of a record batch are one batch:
// equal from the magic byte on (the base offset and the partition leader
// epoch before it are the broker's to set, and lie outside the CRC).
func sameBatch(a, b []byte) bool {
	const from = 16
	if len(a) < from || len(b) < from {
		return bytes.Equal(a, b)
	}
	return bytes.Equal(a[from:], b[from:])
}

// commitGroup makes the group's records durable in the batch log (one
// write, one fdatasync), then commits their pointers, the new logpos and
// any events to Pebble. Pointers need no fsync of their own: a crash that
// loses them leaves the records after the durable logpos, where opening
// finds them. Events have no record in the log, so a group with events
// syncs Pebble too.
func (j *Journal) commitGroup(wb *pebble.Batch, batches int64, events bool) error {
	if batches > 0 {
		file, end, err := j.blog.writeGroup()
		if err != nil {
			// What reached the file is unknown, and records after a torn
			// one would not be found by a recovery scan: stop here.
			j.fail(err)
			return err
		}
		if err := wb.Set(metaKey("logpos"), logPos(file, end), nil); err != nil {
			return err
		}
		j.blog.addLive(file, batches)
	}
	opts := pebble.NoSync
	if events {
		opts = pebble.Sync
	}
	if err := wb.Commit(opts); err != nil {
		return fmt.Errorf("commit journal: %w", err)
	}
	return nil
}
