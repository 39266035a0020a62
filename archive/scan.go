package archive

import (
	"context"
	"fmt"
)

// ScanPartition calls fn with every archived batch of a partition that
// ends after offset from, in offset order, each once whatever the number
// of copies (as ReadPartition, which is ScanPartition from the start): a
// block is fetched when its first wanted batch comes up and dropped once
// its last one has been passed to fn, so memory stays at a few blocks
// however large the partition. The batch is valid only during the call.
func (a *Archive) ScanPartition(ctx context.Context, topic string, partition int32, from int64, fn func(*Batch) error) error {
	return a.scanRefs(ctx, a.partitions()[tp{topic, partition}], from, fn)
}

// scanRefs is ScanPartition over one partition's refs (as partitions
// returns them).
func (a *Archive) scanRefs(ctx context.Context, refs []batchRef, from int64, fn func(*Batch) error) error {
	type blockID struct {
		ix    *Index
		block int
	}
	var (
		chosen    []batchRef
		remaining = map[blockID]int{}
		end       = from
	)
	for _, r := range refs {
		if r.meta.BaseOffset+r.meta.Span <= end {
			continue // before from, or a copy of what an earlier batch covers
		}
		end = r.meta.BaseOffset + r.meta.Span
		chosen = append(chosen, r)
		remaining[blockID{r.ix, r.block}]++
	}
	cache := map[blockID][]Batch{} // by entry
	for _, r := range chosen {
		if err := ctx.Err(); err != nil {
			return err
		}
		id := blockID{r.ix, r.block}
		batches, ok := cache[id]
		if !ok {
			payload, err := a.readBlock(ctx, r.ix, r.block)
			if err != nil {
				return err
			}
			batches = make([]Batch, 0, len(r.ix.Blocks[r.block].Batches))
			err = forEachBatchEntry(&r.ix.Blocks[r.block], payload, func(b *Batch) error {
				batches = append(batches, *b) // Data aliases payload, which lives as long as the cache entry
				return nil
			})
			if err != nil {
				return fmt.Errorf("%s block %d: %w", r.ix.Segment, r.block, err)
			}
			cache[id] = batches
		}
		if r.entry >= len(batches) || batches[r.entry].BaseOffset != r.meta.BaseOffset {
			return fmt.Errorf("%w: %s block %d lacks the batch at offset %d its index lists", ErrCorrupt, r.ix.Segment, r.block, r.meta.BaseOffset)
		}
		if err := fn(&batches[r.entry]); err != nil {
			return err
		}
		if remaining[id]--; remaining[id] == 0 {
			delete(cache, id)
		}
	}
	return nil
}
