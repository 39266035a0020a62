package runner

import (
	"context"
	"errors"
	"net"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// TestFlush: nothing buffered flushes at once; a record no broker will
// acknowledge fails the flush after the timeout.
func TestFlush(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens there now: nothing is ever acknowledged
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.DefaultProduceTopic("t"))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx := context.Background()
	if err := Flush(ctx, cl, time.Second); err != nil {
		t.Fatalf("Flush with nothing buffered: %v", err)
	}
	cl.Produce(ctx, &kgo.Record{Value: []byte("x")}, nil)
	start := time.Now()
	err = Flush(ctx, cl, 100*time.Millisecond)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Flush of an unacknowledged record: %v, want a deadline error", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("Flush took %s with a 100ms timeout", d)
	}
}
