package runner

import (
	"context"
	"sync"
	"time"
)

// FirstErr keeps the first error that any of a workload's goroutines
// reports (produce promises, a poll loop), so that the goroutine timing
// the run can stop early and return it. Make one with NewFirstErr.
type FirstErr struct {
	once sync.Once
	ch   chan struct{} // closed by the first Set
	err  error         // written once, before ch closes
}

// NewFirstErr is a FirstErr with no error set.
func NewFirstErr() *FirstErr { return &FirstErr{ch: make(chan struct{})} }

// Set records err if no error has been set yet; later errors are
// dropped. It is safe to call from any goroutine.
func (f *FirstErr) Set(err error) {
	f.once.Do(func() {
		f.err = err
		close(f.ch)
	})
}

// Err returns the first error set, or nil.
func (f *FirstErr) Err() error {
	select {
	case <-f.ch:
		return f.err
	default:
		return nil
	}
}

// Sleep waits d, returning early with the first error set or ctx's.
func (f *FirstErr) Sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-f.ch:
		return f.err
	case <-ctx.Done():
		return ctx.Err()
	}
}
