package archive

import (
	"encoding/binary"

	"github.com/cockroachdb/pebble/v2"
)

// The journal side of uploading: what to upload next, and forgetting it
// once the store has confirmed it. Only the uploader calls these, holding
// uploadSem.

// uploadSeq is the next upload number of this writer.
func (j *Journal) uploadSeq() (uint64, error) { return j.metaUint64("upseq") }

// fill adds journaled batches, then events, to b until it holds about
// maxBytes, and returns the keys it took and their batch bytes.
func (j *Journal) fill(b *segmentBuilder, maxBytes int) (keys [][]byte, batchBytes int64, err error) {
	it, err := j.db.NewIter(&pebble.IterOptions{LowerBound: []byte{prefixBatch}, UpperBound: []byte{prefixBatch + 1}})
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
		if err = decodeBatchValue(v, &jb); err != nil {
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
	err = j.Events(func(ev *Event) error {
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
	return keys, batchBytes, err
}

// markUploaded deletes keys, which the store now holds, and records the
// next upload number, in one synced batch.
func (j *Journal) markUploaded(keys [][]byte, batchBytes int64, nextSeq uint64) error {
	wb := j.db.NewBatch()
	defer wb.Close()
	for _, k := range keys {
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
	return nil
}

// skipSeq records that an upload number is taken (an object of an earlier
// run holds it) without uploading anything.
func (j *Journal) skipSeq(nextSeq uint64) error {
	return j.db.Set(metaKey("upseq"), binary.BigEndian.AppendUint64(nil, nextSeq), pebble.Sync)
}
