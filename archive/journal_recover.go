package archive

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/cockroachdb/pebble/v2"
	"go.uber.org/zap"
)

// Opening a journal: its format, the batch log's tail a crash left
// without pointers, and the state the writer goroutine starts from.

func (j *Journal) checkFormat() error {
	key := metaKey("format")
	v, closer, err := j.db.Get(key)
	if errors.Is(err, pebble.ErrNotFound) {
		if j.opts.ReadOnly {
			return nil
		}
		return j.db.Set(key, []byte{journalFormat}, pebble.Sync)
	}
	if err != nil {
		return fmt.Errorf("read journal format: %w", err)
	}
	old := len(v) == 1 && (v[0] == 1 || v[0] == 2)
	ok := len(v) == 1 && v[0] == journalFormat
	closer.Close()
	switch {
	case old && !j.opts.ReadOnly:
		return j.db.Set(key, []byte{journalFormat}, pebble.Sync) // new batches go to files of this format
	case !old && !ok:
		return fmt.Errorf("%w: journal format %x, this amber reads 1 to %d: use a newer amber", ErrFormat, v, journalFormat)
	}
	return nil
}

// recoverSeq finds the next event sequence (the larger of the one kept in
// meta and the last event key's successor), the upload backlog and each
// partition's highest journaled base offset.
func (j *Journal) recoverSeq() error {
	seq, err := j.metaUint64("evseq")
	if err != nil {
		return err
	}
	j.nextSeq = seq
	it, err := j.db.NewIter(&pebble.IterOptions{LowerBound: []byte{prefixEvent}, UpperBound: []byte{prefixEvent + 1}})
	if err != nil {
		return err
	}
	defer it.Close()
	if it.Last() {
		k := it.Key()
		if len(k) != 9 {
			return fmt.Errorf("%w: event key %x", ErrFormat, k)
		}
		j.nextSeq = max(j.nextSeq, binary.BigEndian.Uint64(k[1:])+1)
	}
	if err := it.Error(); err != nil {
		return err
	}
	var backlog int64
	live := map[uint64]int64{}
	err = j.batchKeys(func(key, v []byte) error {
		topic, partition, offset, err := parseBatchKey(key)
		if err != nil {
			return err
		}
		ptr, isPtr, err := parseBatchPtr(v)
		switch {
		case err != nil:
			return err
		case isPtr:
			backlog += int64(ptr.dataLen)
			live[ptr.file]++
		default:
			var b Batch
			if err := decodeBatchValue(v, &b); err != nil {
				return err
			}
			backlog += int64(len(b.Data))
		}
		p := tp{topic, partition}
		if top, ok := j.highest[p]; !ok || offset > top {
			j.highest[p] = offset
		}
		return nil
	})
	if err != nil {
		return err
	}
	j.backlog.Store(backlog)
	if j.opts.ReadOnly {
		return nil
	}
	// Files no pointer uses any more (all uploaded) go now.
	j.blog.mu.Lock()
	files := make([]*logFile, 0, len(j.blog.files))
	for _, lf := range j.blog.files {
		files = append(files, lf)
	}
	j.blog.mu.Unlock()
	for _, lf := range files {
		j.blog.addLive(lf.num, live[lf.num])
	}
	return nil
}

// recoverLog points at the batch log's records that a crash left without
// a pointer: those after the durable "logpos" whose key has none. In a
// read-only journal they go to the overlay instead of Pebble. A writable
// journal then moves logpos to the file it is about to start, in the same
// synced batch: every file before it is pointed to, and no spare
// (recoverSeq keeps them) is ever at or after logpos.
func (j *Journal) recoverLog() error {
	var file uint64
	var off int64
	v, closer, err := j.db.Get(metaKey("logpos"))
	switch {
	case errors.Is(err, pebble.ErrNotFound):
	case err != nil:
		return fmt.Errorf("read journal logpos: %w", err)
	default:
		if len(v) != 16 {
			closer.Close()
			return fmt.Errorf("%w: journal logpos %x", ErrFormat, v)
		}
		file, off = binary.BigEndian.Uint64(v), int64(binary.BigEndian.Uint64(v[8:]))
		closer.Close()
	}
	wb := j.db.NewIndexedBatch()
	var found int
	torn, err := j.blog.scan(file, off, func(key []byte, p batchPtr) error {
		if _, closer, err := wb.Get(key); err == nil {
			closer.Close()
			return nil
		} else if !errors.Is(err, pebble.ErrNotFound) {
			return err
		}
		found++
		return wb.Set(key, appendBatchPtr(nil, p), nil)
	})
	if err != nil {
		wb.Close()
		return fmt.Errorf("recover the batch log: %w", err)
	}
	if torn > 0 {
		j.log.Warn("the batch log ends in bytes that are no whole record: a commit a crash or a failed write interrupted (never acknowledged), or a reused file's earlier contents; ignored", zap.Int64("bytes", torn))
	}
	if found > 0 {
		j.log.Info("recovered batches whose pointers a crash lost", zap.Int("batches", found))
	}
	if j.opts.ReadOnly {
		if found > 0 {
			j.overlay = wb
		} else {
			wb.Close()
		}
		return nil
	}
	defer wb.Close()
	if err := wb.Set(metaKey("logpos"), logPos(j.blog.nextNum(), logHeaderSize), nil); err != nil {
		return err
	}
	return wb.Commit(pebble.Sync)
}

// logPos is the value of meta "logpos".
func logPos(file uint64, off int64) []byte {
	return binary.BigEndian.AppendUint64(binary.BigEndian.AppendUint64(make([]byte, 0, 16), file), uint64(off))
}

// reader is what batch and event iterators read: the database, seen
// through the overlay of a read-only journal.
func (j *Journal) reader() pebble.Reader {
	if j.overlay != nil {
		return j.overlay
	}
	return j.db
}

// batchKeys calls fn with every batch key and its stored value (a pointer,
// or a format 1 value) in key order, without reading the batch log.
func (j *Journal) batchKeys(fn func(key, v []byte) error) error {
	it, err := j.reader().NewIter(&pebble.IterOptions{LowerBound: []byte{prefixBatch}, UpperBound: []byte{prefixBatch + 1}})
	if err != nil {
		return err
	}
	defer it.Close()
	for it.First(); it.Valid(); it.Next() {
		v, err := it.ValueAndErr()
		if err != nil {
			return err
		}
		if err := fn(it.Key(), v); err != nil {
			return err
		}
	}
	return it.Error()
}

// decodeStoredBatch fills b from a batch key's stored value, reading the
// batch log for a pointer (into *buf, which it may grow). b.Data aliases
// v or *buf.
func (j *Journal) decodeStoredBatch(v []byte, b *Batch, buf *[]byte) error {
	p, isPtr, err := parseBatchPtr(v)
	if err != nil {
		return err
	}
	if !isPtr {
		return decodeBatchValue(v, b)
	}
	_, val, out, err := j.blog.read(p, *buf)
	*buf = out
	if err != nil {
		return err
	}
	return decodeBatchValue(val, b)
}

func metaKey(name string) []byte { return append([]byte{prefixMeta}, name...) }

func (j *Journal) metaUint64(name string) (uint64, error) {
	v, closer, err := j.db.Get(metaKey(name))
	if errors.Is(err, pebble.ErrNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	defer closer.Close()
	if len(v) != 8 {
		return 0, fmt.Errorf("%w: meta %s", ErrFormat, name)
	}
	return binary.BigEndian.Uint64(v), nil
}
