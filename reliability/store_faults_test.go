package reliability_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/amber-kafka/amber/archive"
	"github.com/amber-kafka/amber/archive/s3"
	"github.com/amber-kafka/amber/internal/testkit"
)

// s3Store opens bucket on endpoint (MinIO itself, or a fault proxy in
// front of it) with m's credentials.
func s3Store(t testing.TB, m *testkit.MinIO, endpoint, bucket string) archive.Store {
	t.Helper()
	return s3StoreAt(t, m, endpoint, bucket, "amber")
}

// s3StoreAt is s3Store under another prefix.
func s3StoreAt(t testing.TB, m *testkit.MinIO, endpoint, bucket, prefix string) archive.Store {
	t.Helper()
	s, err := s3.New(testCtx(t, 30*time.Second), s3.Options{Endpoint: endpoint, Bucket: bucket, Prefix: prefix,
		Region: "us-east-1", AccessKey: m.AccessKey, SecretKey: m.SecretKey})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestObjectStoreStopsAnswering freezes MinIO (SIGSTOP: connections
// hang, nothing is refused) for 30 s while an idempotent producer streams
// through the proxy in sync mode, then thaws it. The proxy must keep
// acknowledging from its journal all along, the uploads must time out and
// retry rather than hang, the backlog must drain once the store answers,
// and the archive must hold every acknowledged record and equal the
// cluster, with no backfill.
func TestObjectStoreStopsAnswering(t *testing.T) {
	if testing.Short() {
		t.Skip("a 30 s outage: run without -short")
	}
	m := testkit.StartMinIO(t)
	m.MakeBucket(t, "frozen", false)
	store := s3Store(t, m, m.Endpoint, "frozen")
	c := testkit.NewCluster(t, kfake.SeedTopics(4, "orders"))
	n := startNode(t, nodeOptions{Upstreams: c.ListenAddrs(), Store: store, AttemptTimeout: time.Second, MaxBackoff: 2 * time.Second})
	s := startStream(t, []string{n.Addr()}, "orders", "frozen", 8)
	s.waitAcks(t, 500, 30*time.Second)
	waitFor(t, 10*time.Second, "a first upload", func() bool { return n.up.Stats().Segments > 0 })

	m.Stop()
	frozenAt, ackedAt := time.Now(), s.acks.len()
	var maxBacklog int64
	for time.Since(frozenAt) < 30*time.Second {
		maxBacklog = max(maxBacklog, n.j.BacklogBytes())
		time.Sleep(100 * time.Millisecond)
	}
	during := s.acks.len() - ackedAt
	failures := n.up.Stats().Failures
	if n.up.Health() == nil {
		t.Error("the uploader reports healthy after 30 s without an answer from the store")
	}
	m.Cont()
	if during < 1000 {
		t.Errorf("only %d records acknowledged in 30 s with the store frozen: the proxy stalled", during)
	}
	if failures == 0 {
		t.Error("no failed upload attempt counted while the store was frozen")
	}
	thawed := time.Now()
	segs := n.up.Stats().Segments
	waitFor(t, 30*time.Second, "the backlog uploaded after the thaw", func() bool { return n.up.Stats().Segments > segs && n.up.Health() == nil })
	caughtUp := time.Since(thawed)
	s.progress(t, 200, 10*time.Second)
	if errs := s.finish(); len(errs) > 0 {
		t.Fatalf("%d produce errors, first: %v", len(errs), errs[0])
	}
	if err := n.stop(); err != nil {
		t.Fatalf("stop: %v", err)
	}
	t.Logf("RESULT store frozen 30 s: %d records acknowledged during the outage (%d in all), %d failed upload attempts, backlog peaked at %d bytes, uploads resumed %s after the thaw",
		during, s.acks.len(), failures, maxBacklog, caughtUp.Round(10*time.Millisecond))
	checkArchive(t, check{Store: store, Cluster: c.ListenAddrs(), Topics: []string{"orders"}, MustHold: s.acks})
}

// faultyS3 is an HTTP proxy in front of MinIO that answers 503 SlowDown
// while failing is set: to half the requests without forwarding them
// (refused), to the other half after forwarding them (the store did the
// work, its answer is lost): the retry of a PUT then meets its own
// object.
type faultyS3 struct {
	srv              *httptest.Server
	failing          atomic.Bool
	n, refused, lost atomic.Int64
}

func startFaultyS3(t testing.TB, target string) *faultyS3 {
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	f := &faultyS3{}
	rp := httputil.NewSingleHostReverseProxy(u)
	slowDown := func(w http.ResponseWriter) {
		w.Header().Set("Content-Type", "application/xml")
		w.WriteHeader(http.StatusServiceUnavailable)
		io.WriteString(w, `<?xml version="1.0" encoding="UTF-8"?><Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message></Error>`)
	}
	f.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !f.failing.Load() {
			rp.ServeHTTP(w, r)
			return
		}
		if f.n.Add(1)%2 == 1 {
			f.refused.Add(1)
			io.Copy(io.Discard, r.Body)
			slowDown(w)
			return
		}
		f.lost.Add(1)
		rec := httptest.NewRecorder()
		rp.ServeHTTP(rec, r) // the store does the work; its answer is dropped
		slowDown(w)
	}))
	t.Cleanup(f.srv.Close)
	return f
}

// TestObjectStoreAnswers5xx puts an HTTP proxy between the uploader and
// MinIO that answers 503 SlowDown to every request for 8 s, half of them
// after MinIO has done the work. Uploads must fail and retry (minio-go's
// own retries, then the uploader's), a PUT retried after its answer was
// lost must be recognised (the object exists with the same bytes), and
// the archive must end with every acknowledged record once and equal the
// cluster.
func TestObjectStoreAnswers5xx(t *testing.T) {
	m := testkit.StartMinIO(t)
	m.MakeBucket(t, "flaky", false)
	f := startFaultyS3(t, m.Endpoint)
	store := s3Store(t, m, f.srv.URL, "flaky")
	c := testkit.NewCluster(t, kfake.SeedTopics(4, "orders"))
	n := startNode(t, nodeOptions{Upstreams: c.ListenAddrs(), Store: store, FlushBytes: 64 << 10, AttemptTimeout: 3 * time.Second, MaxBackoff: time.Second})
	s := startStream(t, []string{n.Addr()}, "orders", "flaky", 8)
	s.waitAcks(t, 300, 30*time.Second)
	waitFor(t, 10*time.Second, "a first upload", func() bool { return n.up.Stats().Segments > 0 })

	f.failing.Store(true)
	start, acked := time.Now(), s.acks.len()
	for time.Since(start) < 8*time.Second {
		time.Sleep(50 * time.Millisecond)
	}
	f.failing.Store(false)
	during := s.acks.len() - acked
	failures := n.up.Stats().Failures
	segs := n.up.Stats().Segments
	waitFor(t, 30*time.Second, "uploads after the errors stop", func() bool { return n.up.Stats().Segments > segs+1 && n.up.Health() == nil })
	s.progress(t, 200, 10*time.Second)
	if errs := s.finish(); len(errs) > 0 {
		t.Fatalf("%d produce errors, first: %v", len(errs), errs[0])
	}
	if err := n.stop(); err != nil {
		t.Fatalf("stop: %v", err)
	}
	if failures == 0 || f.lost.Load() == 0 {
		t.Errorf("the fault did not bite: %d failed attempts, %d answers lost", failures, f.lost.Load())
	}
	if during == 0 {
		t.Error("no record acknowledged while the store failed")
	}
	t.Logf("RESULT store 503 for 8 s: %d requests refused, %d done but answered 503, %d failed upload attempts; %d records acknowledged meanwhile, %d in all",
		f.refused.Load(), f.lost.Load(), failures, during, s.acks.len())
	checkArchive(t, check{Store: s3Store(t, m, m.Endpoint, "flaky"), Cluster: c.ListenAddrs(), Topics: []string{"orders"}, MustHold: s.acks})
}
