package archive

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
)

// PrunePlan is what a prune would delete: whole uploads (a segment and its
// index) all of whose data was acknowledged before the cut, and, if topics
// were named, holds only those topics. Objects are never rewritten, so an
// upload that mixes data to keep with data to drop is kept whole.
type PrunePlan struct {
	Before  time.Time
	Topics  []string
	Uploads []*Index // to delete
	Bytes   int64    // their size
	// Orphans are segments without an index (an upload interrupted before
	// its index was written) older than the cut.
	Orphans []ObjectInfo
	// Kept counts uploads kept because they straddle the cut or hold
	// other topics.
	Kept int
}

// PlanPrune decides what a prune before the given time would delete.
func (a *Archive) PlanPrune(ctx context.Context, before time.Time, topics []string) (*PrunePlan, error) {
	want := map[string]bool{}
	for _, t := range topics {
		want[t] = true
	}
	p := &PrunePlan{Before: before, Topics: topics}
	indexed := map[string]bool{}
	for _, ix := range a.indexes {
		indexed[ix.Segment] = true
		if prunable(ix, before, want) {
			p.Uploads = append(p.Uploads, ix)
			p.Bytes += ix.SegSize + ix.ObjectSize
		} else {
			p.Kept++
		}
	}
	err := a.store.List(ctx, "v1/seg/", func(o ObjectInfo) error {
		if strings.HasSuffix(o.Key, ".seg") && !indexed[o.Key] && o.Modified.Before(before) {
			p.Orphans = append(p.Orphans, o)
			p.Bytes += o.Size
		}
		return nil
	})
	return p, err
}

func prunable(ix *Index, before time.Time, topics map[string]bool) bool {
	for i := range ix.Blocks {
		blk := &ix.Blocks[i]
		switch blk.Kind {
		case blockBatches:
			if len(topics) > 0 && !topics[blk.Topic] {
				return false
			}
			for _, m := range blk.Batches {
				if !m.AckTime.Before(before) {
					return false
				}
			}
		case blockEvents:
			if len(topics) > 0 || !blk.LastTime.Before(before) {
				return false // events (commits, admin) go only with a full prune
			}
		}
	}
	return true
}

// Prune deletes what the plan names: each upload's index first, so the
// archive never lists data it no longer has, then its segment. Under S3
// object lock the first refusal stops the prune with ErrLocked (an index
// outlives its segment's retention, so a deletable index means a
// deletable segment).
func (a *Archive) Prune(ctx context.Context, p *PrunePlan, progress func(done, total int)) error {
	total := len(p.Uploads) + len(p.Orphans)
	done := 0
	for _, ix := range p.Uploads {
		if err := a.store.Delete(ctx, ix.Key); err != nil {
			return pruneErr(err, ix.Key, done)
		}
		if err := a.store.Delete(ctx, ix.Segment); err != nil {
			return fmt.Errorf("deleted index %s but not its segment (delete it by hand or prune again): %w", ix.Key, err)
		}
		done++
		if progress != nil {
			progress(done, total)
		}
	}
	for _, o := range p.Orphans {
		if err := a.store.Delete(ctx, o.Key); err != nil {
			return pruneErr(err, o.Key, done)
		}
		done++
		if progress != nil {
			progress(done, total)
		}
	}
	return nil
}

func pruneErr(err error, key string, done int) error {
	if errors.Is(err, ErrLocked) {
		return fmt.Errorf("%w: the store's object lock retention forbids deleting %s yet; %d uploads were pruned before it. Prune again once the retention period has passed", ErrLocked, key, done)
	}
	return fmt.Errorf("delete %s: %w", key, err)
}
