package archive_test

import (
	"bytes"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/amber-kafka/amber/archive"
	"github.com/amber-kafka/amber/internal/testkit"
	"github.com/amber-kafka/amber/protocol"
)

// produceExchange is a Produce request (v9, acks=all) with records for
// t/0 and its response accepting them at base.
func produceExchange(records []byte, base int64) (*kmsg.ProduceRequest, *kmsg.ProduceResponse) {
	req := kmsg.NewPtrProduceRequest()
	req.SetVersion(9)
	req.Acks = -1
	rt := kmsg.NewProduceRequestTopic()
	rt.Topic = "t"
	rp := kmsg.NewProduceRequestTopicPartition()
	rp.Records = records
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	resp := kmsg.NewPtrProduceResponse()
	resp.SetVersion(9)
	st := kmsg.NewProduceResponseTopic()
	st.Topic = "t"
	sp := kmsg.NewProduceResponseTopicPartition()
	sp.BaseOffset = base
	st.Partitions = append(st.Partitions, sp)
	resp.Topics = append(resp.Topics, st)
	return req, resp
}

// lentExchange is a Produce exchange whose request's batches alias buf,
// as the proxy's pooled frame buffer, with Retain recording the tee's
// calls. The broker accepted the partition at offset 40.
func lentExchange(buf []byte, retained, released *atomic.Int32) *protocol.Exchange {
	req, resp := produceExchange(buf, 40)
	return &protocol.Exchange{Request: req, Response: resp, Acked: time.Now(), Retain: func() func() {
		retained.Add(1)
		return func() {
			released.Add(1)
			for i := range buf {
				buf[i] = 'x' // the proxy reads the next frame into it
			}
		}
	}}
}

// TestTeeLendsTheRequestBuffer: a tee keeps a Produce request's buffer
// (Exchange.Retain) instead of copying its batches, and the journal gives
// it back only once the commit holding them has written them; what is
// journaled is the batch as the client sent it, though the buffer is
// overwritten right after. A refused append gives it back at once.
func TestTeeLendsTheRequestBuffer(t *testing.T) {
	for _, d := range []archive.Durability{archive.Async, archive.Sync} {
		j, err := archive.OpenJournal(archive.JournalOptions{Dir: filepath.Join(t.TempDir(), "j"), CoalesceDelay: time.Hour})
		if err != nil {
			t.Fatal(err)
		}
		tee := archive.NewTee(j, archive.TeeOptions{Durability: d})
		batch := testkit.RecordBatch([]byte("k"), []byte("lent"))
		buf := append([]byte(nil), batch...)
		var retained, released atomic.Int32
		wait := tee.Observe(lentExchange(buf, &retained, &released))
		if retained.Load() != 1 {
			t.Fatalf("%v: Retain called %d times, want 1", d, retained.Load())
		}
		if d == archive.Async {
			if released.Load() != 0 {
				t.Fatalf("async: released before the commit")
			}
			if err := j.Commit(); err != nil {
				t.Fatal(err)
			}
		} else {
			wait() // the sync commit runs at once
		}
		if released.Load() != 1 {
			t.Fatalf("%v: released %d times after the commit, want 1", d, released.Load())
		}
		var got [][]byte
		j.Batches(func(b *archive.Batch) error {
			got = append(got, append([]byte(nil), b.Data...))
			return nil
		})
		if len(got) != 1 || !bytes.Equal(got[0], batch) {
			t.Errorf("%v: journaled %q, want the batch as sent", d, got)
		}
		j.Close()

		// A closed journal refuses: the buffer comes back at once.
		retained.Store(0)
		released.Store(0)
		tee.Observe(lentExchange(append([]byte(nil), batch...), &retained, &released))
		if retained.Load() != 1 || released.Load() != 1 {
			t.Errorf("%v, refused: retained %d, released %d; want 1, 1", d, retained.Load(), released.Load())
		}
	}
}
