package testkit

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/amber-kafka/amber/archive"
	"github.com/amber-kafka/amber/archive/memstore"
	"github.com/amber-kafka/amber/proxy"
)

// Teed is a kfake cluster behind a proxy that tees into a journal, which
// Archive uploads into a memory store: the source side of restore and
// impact tests.
type Teed struct {
	Cluster *kfake.Cluster
	Proxy   *proxy.Proxy
	Journal *archive.Journal
	Store   *memstore.Store
}

// NewTeed starts a cluster with kopts and a teeing proxy in front of it
// (sync durability); both stop when the test ends.
func NewTeed(t testing.TB, kopts ...kfake.Opt) *Teed {
	t.Helper()
	e := &Teed{Cluster: NewCluster(t, kopts...), Store: memstore.New()}
	j, err := archive.OpenJournal(archive.JournalOptions{Dir: filepath.Join(t.TempDir(), "j")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { j.Close() })
	e.Journal = j
	e.Proxy = StartProxy(t, proxy.Options{Upstreams: e.Cluster.ListenAddrs(), Tee: archive.NewTee(j, archive.TeeOptions{})})
	return e
}

// Client is a franz-go client through the proxy, partitioning by each
// record's Partition; it closes when the test ends.
func (e *Teed) Client(t testing.TB, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(e.Proxy.Addr()), kgo.RecordPartitioner(kgo.ManualPartitioner())}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cl
}

// Archive uploads everything journaled so far and opens the archive.
func (e *Teed) Archive(t testing.TB) *archive.Archive {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := e.Journal.Commit(); err != nil {
		t.Fatal(err)
	}
	u, err := archive.NewUploader(archive.UploaderOptions{Journal: e.Journal, Store: e.Store, WriterID: "00000000000000aa"})
	if err != nil {
		t.Fatal(err)
	}
	if err := u.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	a, err := archive.OpenArchive(ctx, e.Store, nil)
	if err != nil {
		t.Fatal(err)
	}
	return a
}
