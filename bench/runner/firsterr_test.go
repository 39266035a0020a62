package runner

import (
	"context"
	"errors"
	"testing"
	"time"
)

// TestFirstErr: the first error set wins, and Sleep returns early with it
// or with the context's.
func TestFirstErr(t *testing.T) {
	ctx := context.Background()
	f := NewFirstErr()
	if err := f.Err(); err != nil {
		t.Fatalf("Err before Set: %v", err)
	}
	if err := f.Sleep(ctx, time.Millisecond); err != nil {
		t.Fatalf("Sleep before Set: %v", err)
	}
	first, second := errors.New("first"), errors.New("second")
	go f.Set(first)
	if err := f.Sleep(ctx, time.Minute); err != first {
		t.Fatalf("Sleep after Set: %v, want %v", err, first)
	}
	f.Set(second)
	if err := f.Err(); err != first {
		t.Fatalf("Err after two Sets: %v, want %v", err, first)
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if err := NewFirstErr().Sleep(cctx, time.Minute); !errors.Is(err, context.Canceled) {
		t.Fatalf("Sleep with canceled context: %v", err)
	}
}
