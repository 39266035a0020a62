package archive

import (
	"context"
	"time"
)

// Sink is where a backfill puts what it fetched: a Writer (straight into a
// store, `amber backfill`) or a JournalSink (the proxy's own journal, which
// its uploader ships). Write is safe for concurrent use.
type Sink interface {
	// Write stores batches and events. Batch data must not change until
	// Write returns (until the journal has committed it, for a
	// JournalSink, unless ctx ends first).
	Write(ctx context.Context, batches []Batch, events []Event) error
}

// DefaultSinkMaxBacklog is the journal backlog past which a JournalSink
// waits for the uploader before it appends more.
const DefaultSinkMaxBacklog = 256 << 20

// JournalSink writes into a journal and waits for each commit. Before
// appending it waits while more than MaxBacklogBytes wait for upload, so a
// large backfill never fills the journal up to the cap past which the
// proxy's own batches would be refused.
type JournalSink struct {
	Journal *Journal
	// MaxBacklogBytes: default DefaultSinkMaxBacklog, lowered to half
	// the journal's MaxBacklogBytes if that is smaller.
	MaxBacklogBytes int64
}

var _ Sink = (*JournalSink)(nil)

// Write appends to the journal and returns once the commit holding
// batches and events is durable.
func (s *JournalSink) Write(ctx context.Context, batches []Batch, events []Event) error {
	limit := s.MaxBacklogBytes
	if limit <= 0 {
		limit = DefaultSinkMaxBacklog
	}
	if m := s.Journal.opts.MaxBacklogBytes; m > 0 {
		limit = min(limit, m/2)
	}
	if len(batches) > 0 {
		for s.Journal.BacklogBytes() > limit {
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(100 * time.Millisecond):
			}
		}
	}
	done, err := s.Journal.Append(batches, events)
	if err != nil {
		return err
	}
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}
