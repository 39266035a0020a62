package archive

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"sync"
	"time"
)

// Archive is an archive in a store, read through its indexes. Opening it
// reads every index object (small); data blocks are fetched with ranged
// reads only when asked for, so reading one partition downloads only that
// partition's blocks.
type Archive struct {
	store   Store
	key     *Key
	indexes []*Index

	// parts caches partitions(), built on first use: every
	// ReadPartition of a restore would otherwise walk every index of
	// every partition (10,000 partitions took hours). Refresh clears it.
	partsMu sync.Mutex
	parts   map[tp][]batchRef
}

// OpenArchive reads the indexes of every writer in store. key decrypts an
// encrypted archive; a wrong or missing key is an error naming the key id
// needed.
func OpenArchive(ctx context.Context, store Store, key *Key) (*Archive, error) {
	var names []string
	if err := store.List(ctx, "v1/idx/", func(o ObjectInfo) error {
		if strings.HasSuffix(o.Key, ".idx") {
			names = append(names, o.Key)
		}
		return nil
	}); err != nil {
		return nil, fmt.Errorf("list %s: %w", store, err)
	}
	a := &Archive{store: store, key: key, indexes: make([]*Index, len(names))}
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs []error
		sem  = make(chan struct{}, 8)
	)
	for i, name := range names {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			ix, err := a.readIndex(ctx, name)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				errs = append(errs, err)
				return
			}
			a.indexes[i] = ix
		}()
	}
	wg.Wait()
	if len(errs) > 0 {
		sort.Slice(errs, func(i, j int) bool { return errs[i].Error() < errs[j].Error() })
		return nil, errors.Join(errs...)
	}
	return a, nil
}

func (a *Archive) readIndex(ctx context.Context, name string) (*Index, error) {
	rc, err := a.store.Get(ctx, name)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", name, err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", name, err)
	}
	return decodeIndex(name, b, a.key)
}

// Indexes are the archive's indexes, in key order (writer, then upload).
func (a *Archive) Indexes() []*Index { return a.indexes }

// Store is the archive's store.
func (a *Archive) Store() Store { return a.store }

type tp struct {
	topic     string
	partition int32
}

// batchRef is one batch as an index places it.
type batchRef struct {
	meta  BatchMeta
	ix    *Index
	block int
	entry int // its place in the block: two batches of a block can share a base offset
}

// partitions groups every indexed batch by partition, each sorted by base
// offset (then by ack time, so the first copy of a batch wins). The map is
// shared: callers must not change it.
func (a *Archive) partitions() map[tp][]batchRef {
	a.partsMu.Lock()
	defer a.partsMu.Unlock()
	if a.parts == nil {
		a.parts = a.buildPartitions()
	}
	return a.parts
}

func (a *Archive) buildPartitions() map[tp][]batchRef {
	out := map[tp][]batchRef{}
	for _, ix := range a.indexes {
		for bi := range ix.Blocks {
			blk := &ix.Blocks[bi]
			if blk.Kind != blockBatches {
				continue
			}
			k := tp{blk.Topic, blk.Partition}
			for ei, m := range blk.Batches {
				out[k] = append(out[k], batchRef{meta: m, ix: ix, block: bi, entry: ei})
			}
		}
	}
	for _, refs := range out {
		sort.SliceStable(refs, func(i, j int) bool {
			if refs[i].meta.BaseOffset != refs[j].meta.BaseOffset {
				return refs[i].meta.BaseOffset < refs[j].meta.BaseOffset
			}
			return refs[i].meta.AckTime.Before(refs[j].meta.AckTime)
		})
	}
	return out
}

// Coverage reports, per partition, what the archive holds, merging every
// writer and counting overlapping copies of a batch once.
func (a *Archive) Coverage() []PartitionCoverage {
	cov, _ := CombinedCoverage(a, nil) // no journal: no error
	return cov
}

// ReadPartition calls fn with every archived batch of a partition in
// offset order, each once whatever the number of copies, fetching only the
// blocks that hold them. Blocks are fetched as the walk reaches them and
// dropped once their last wanted batch is out, so memory holds the blocks
// that overlap at one point (usually one), not the partition. The batch is
// valid only during the call.
func (a *Archive) ReadPartition(ctx context.Context, topic string, partition int32, fn func(*Batch) error) error {
	return a.ReadPartitionAckedAfter(ctx, topic, partition, time.Time{}, fn)
}

// ReadPartitionAckedAfter is ReadPartition over the batches acknowledged
// after a moment only: a topic deleted and created again under the same
// name holds two offset ranges that overlap, and a restore of the new one
// must not take the old one's batches as copies of its own.
func (a *Archive) ReadPartitionAckedAfter(ctx context.Context, topic string, partition int32, after time.Time, fn func(*Batch) error) error {
	return a.scanRefs(ctx, ackedAfter(a.partitions()[tp{topic, partition}], after), -1<<62, fn)
}

// ackedAfter keeps the refs acknowledged after after (all if it is zero).
func ackedAfter(refs []batchRef, after time.Time) []batchRef {
	if after.IsZero() {
		return refs
	}
	kept := make([]batchRef, 0, len(refs))
	for _, r := range refs {
		if r.meta.AckTime.After(after) {
			kept = append(kept, r)
		}
	}
	return kept
}

// readBlock fetches one block with a ranged read and decodes it.
func (a *Archive) readBlock(ctx context.Context, ix *Index, n int) ([]byte, error) {
	blk := &ix.Blocks[n]
	rc, err := a.store.GetRange(ctx, ix.Segment, blk.Offset, blk.Length)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", ix.Segment, err)
	}
	defer rc.Close()
	stored, err := io.ReadAll(rc)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", ix.Segment, err)
	}
	return decodeBlock(ix, n, stored, a.key)
}

// Events calls fn with every archived event, ordered by time (then by
// writer and sequence), each writer's copy of an event once.
func (a *Archive) Events(ctx context.Context, fn func(writer string, ev *Event) error) error {
	type wev struct {
		writer string
		ev     Event
	}
	var all []wev
	seen := map[string]map[uint64]bool{}
	for _, ix := range a.indexes {
		for bi := range ix.Blocks {
			if ix.Blocks[bi].Kind != blockEvents {
				continue
			}
			payload, err := a.readBlock(ctx, ix, bi)
			if err != nil {
				return err
			}
			if seen[ix.Writer] == nil {
				seen[ix.Writer] = map[uint64]bool{}
			}
			err = forEachEventEntry(payload, func(ev *Event) error {
				if !seen[ix.Writer][ev.Seq] {
					seen[ix.Writer][ev.Seq] = true
					all = append(all, wev{ix.Writer, *ev})
				}
				return nil
			})
			if err != nil {
				return fmt.Errorf("%s: %w", ix.Segment, err)
			}
		}
	}
	sort.SliceStable(all, func(i, j int) bool {
		if !all[i].ev.Time.Equal(all[j].ev.Time) {
			return all[i].ev.Time.Before(all[j].ev.Time)
		}
		if all[i].writer != all[j].writer {
			return all[i].writer < all[j].writer
		}
		return all[i].ev.Seq < all[j].ev.Seq
	})
	for i := range all {
		if err := fn(all[i].writer, &all[i].ev); err != nil {
			return err
		}
	}
	return nil
}
