package main

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/amber-kafka/amber/archive"
	"github.com/amber-kafka/amber/archive/file"
	"github.com/amber-kafka/amber/internal/testkit"
	"github.com/amber-kafka/amber/protocol"
)

// The reliability tests that need the amber binary: a real process to
// kill, a real disk to fill, real logs to read. The others are in
// reliability/; docs/RELIABILITY.md has the results.

// place is where a record is: topic, partition, offset.
type place struct {
	topic     string
	partition int32
	offset    int64
}

// ack is one acknowledged record and when its acknowledgement arrived.
type ack struct {
	place
	at time.Time
}

// acker produces continuously with an idempotent franz-go producer (acks
// all, unlimited retries), inflight records at a time, and records each
// acknowledgement.
type acker struct {
	cl   *kgo.Client
	stop chan struct{}
	done chan struct{}
	mu   sync.Mutex
	acks []ack
	errs []error
}

func startAcker(t *testing.T, seeds []string, topic string, value []byte, inflight int, opts ...kgo.Opt) *acker {
	t.Helper()
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(seeds...), kgo.DefaultProduceTopic(topic), kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.RetryBackoffFn(func(int) time.Duration { return 50 * time.Millisecond })}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	a := &acker{cl: cl, stop: make(chan struct{}), done: make(chan struct{})}
	t.Cleanup(func() { a.finish(); cl.Close() })
	go func() {
		defer close(a.done)
		sem := make(chan struct{}, inflight)
		var wg sync.WaitGroup
		defer wg.Wait()
		for i := 0; ; i++ {
			select {
			case <-a.stop:
				return
			case sem <- struct{}{}:
			}
			wg.Add(1)
			v := append(fmt.Appendf(nil, "%d-", i), value...)
			cl.Produce(context.Background(), &kgo.Record{Key: fmt.Appendf(nil, "k%d", i%31), Value: v}, func(r *kgo.Record, err error) {
				defer wg.Done()
				now := time.Now()
				<-sem
				a.mu.Lock()
				defer a.mu.Unlock()
				if err != nil {
					a.errs = append(a.errs, err)
					return
				}
				a.acks = append(a.acks, ack{place{r.Topic, r.Partition, r.Offset}, now})
			})
		}
	}()
	return a
}

func (a *acker) count() int { a.mu.Lock(); defer a.mu.Unlock(); return len(a.acks) }

func (a *acker) waitCount(t *testing.T, n int, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for a.count() < n {
		if time.Now().After(deadline) {
			t.Fatalf("%d records acknowledged in %s, waiting for %d", a.count(), within, n)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// finish stops producing, waits for what is in flight and returns the
// acknowledgements and errors.
func (a *acker) finish() ([]ack, []error) {
	select {
	case <-a.stop:
	default:
		close(a.stop)
	}
	<-a.done
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.acks, a.errs
}

// archivedOffsets reads a file archive and returns, per topic and
// partition, the offsets it holds, and how many times.
func archivedOffsets(t *testing.T, dir string, topics map[string]int32) map[place]int {
	t.Helper()
	store, err := file.New(dir)
	if err != nil {
		t.Fatal(err)
	}
	return archivedOffsetsIn(t, store, topics)
}

// archivedOffsetsIn is archivedOffsets for any store.
func archivedOffsetsIn(t *testing.T, store archive.Store, topics map[string]int32) map[place]int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	a, err := archive.OpenArchive(ctx, store, nil)
	if err != nil {
		t.Fatal(err)
	}
	out := map[place]int{}
	for topic, n := range topics {
		for p := int32(0); p < n; p++ {
			err := a.ReadPartition(ctx, topic, p, func(b *archive.Batch) error {
				h, err := protocol.ParseBatchHeader(b.Data)
				if err != nil {
					return err
				}
				for o := b.BaseOffset; o < b.BaseOffset+h.Records(); o++ {
					out[place{topic, p, o}]++
				}
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
		}
	}
	return out
}

// mustHold fails the test for every acknowledgement the archive lacks and
// returns how many it holds.
func mustHold(t *testing.T, archived map[place]int, acks []ack) int {
	t.Helper()
	missing := 0
	for _, a := range acks {
		if archived[a.place] == 0 {
			if missing++; missing <= 5 {
				t.Errorf("acknowledged record %s/%d@%d (at %s) is not archived", a.topic, a.partition, a.offset, a.at.Format(time.RFC3339Nano))
			}
		}
	}
	if missing > 0 {
		t.Errorf("%d of %d acknowledged records are not archived", missing, len(acks))
	}
	return len(acks) - missing
}

// verifyAgainstCmd runs `amber verify` (integrity) and `amber verify
// --against` on an archive and fails the test unless both exit 0. It
// returns the comparison.
func verifyAgainstCmd(t *testing.T, env map[string]string, url string, cluster []string, topics ...string) archive.Comparison {
	t.Helper()
	if out, errOut, err := amberEnv(t, env, "verify", "--archive", url); err != nil {
		t.Fatalf("amber verify: %v\n%s%s", err, out, errOut)
	}
	args := []string{"verify", "--archive", url, "--against", strings.Join(cluster, ","), "--json"}
	if len(topics) > 0 {
		args = append(args, "--topic", strings.Join(topics, ","))
	}
	out, errOut, err := amberEnv(t, env, args...)
	var cmp archive.Comparison
	if jerr := json.Unmarshal([]byte(out), &cmp); jerr != nil {
		t.Fatalf("amber verify --against: %v %v\n%s%s", err, jerr, out, errOut)
	}
	if err != nil {
		for _, p := range cmp.Partitions {
			if p.Missing > 0 || p.Differing > 0 || p.Error != "" {
				t.Errorf("verify --against: %s/%d: %d missing %v, %d differing %s", p.Topic, p.Partition, p.Missing, p.MissingRanges, p.Differing, p.Error)
			}
		}
		t.Fatalf("amber verify --against: %v\n%s", err, errOut)
	}
	t.Logf("RESULT amber verify --against: %d partitions, %d records matched, %d missing, %d differing", len(cmp.Partitions), cmp.Matched, cmp.Missing, cmp.Differing)
	return cmp
}

// backfill runs `amber backfill` and returns the offsets it fetched.
func backfillCmd(t *testing.T, env map[string]string, url string, cluster []string) int64 {
	t.Helper()
	out, errOut, err := amberEnv(t, env, "backfill", "--archive", url, "--bootstrap", strings.Join(cluster, ","), "--json", "--no-snapshots")
	if err != nil {
		t.Fatalf("amber backfill: %v\n%s%s", err, out, errOut)
	}
	var rep archive.BackfillReport
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("backfill --json: %v\n%s", err, out)
	}
	return rep.Offsets
}

// mountTmpfs mounts a tmpfs of size bytes on a fresh directory, or skips
// the test where mounting is not permitted (not root).
func mountTmpfs(t *testing.T, size string) string {
	t.Helper()
	dir := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size="+size, "tmpfs", dir).CombinedOutput(); err != nil {
		t.Skipf("cannot mount a tmpfs (%v: %s): TestJournalTurnsReadOnly in reliability/ covers a failing journal with errorfs", err, out)
	}
	t.Cleanup(func() { exec.Command("umount", "-l", dir).Run() })
	return dir
}

// failTime finds when the proxy logged its journal failure.
func failTime(t *testing.T, log string) time.Time {
	t.Helper()
	for _, line := range strings.Split(log, "\n") {
		var e struct {
			TS  string `json:"ts"`
			Msg string `json:"msg"`
		}
		if json.Unmarshal([]byte(line), &e) == nil && strings.HasPrefix(e.Msg, "journal failed") {
			ts, err := time.Parse("2006-01-02T15:04:05.000Z0700", e.TS)
			if err != nil {
				t.Fatalf("log time %q: %v", e.TS, err)
			}
			return ts
		}
	}
	t.Fatalf("no journal failure logged:\n%s", log)
	return time.Time{}
}

// TestJournalDiskFills runs the proxy with its journal on a 16 MiB tmpfs
// that another file has nearly filled, under an idempotent producer in
// sync mode. When the journal's writes fail (ENOSPC) the proxy must keep
// serving and /readyz must say why. The operator frees space and
// restarts the proxy: every record acknowledged before the failure must
// then be archived by the proxy itself, the ones acknowledged after are
// holes that `amber backfill` fills, and `amber verify --against`
// passes.
func TestJournalDiskFills(t *testing.T) {
	disk := mountTmpfs(t, "16m")
	filler := filepath.Join(disk, "filler")
	if err := os.WriteFile(filler, make([]byte, 14<<20), 0o644); err != nil {
		t.Fatal(err)
	}
	c := testkit.NewCluster(t, kfake.SeedTopics(3, "full"))
	data, arch := filepath.Join(disk, "data"), filepath.Join(t.TempDir(), "archive")
	listen, admin := freePort(t), freePort(t)
	args := []string{"proxy", "--upstream", strings.Join(c.ListenAddrs(), ","), "--listen", listen, "--admin-listen", admin,
		"--data", data, "--archive", arch, "--flush-interval", "200ms", "--sync-timeout", "1s", "--backfill-interval", "0", "--log-level", "warn"}
	cmd, out := startAmber(t, args...)
	waitHTTP(t, "http://"+admin+"/readyz", 200)
	start := time.Now()
	value := make([]byte, 1000)
	rand.Read(value) // incompressible: franz-go compresses batches
	a := startAcker(t, []string{listen}, "full", value, 16)
	body := waitHTTPWithin(t, "http://"+admin+"/readyz", 503, time.Minute)
	t.Logf("journal failed after %s", time.Since(start))
	failed := failTime(t, out.String())
	n := a.count()
	a.waitCount(t, n+300, 30*time.Second) // the proxy keeps serving
	acks, errs := a.finish()
	t.Logf("300 more acknowledged after %s", time.Since(start))
	if len(errs) > 0 {
		t.Fatalf("%d produce errors, first: %v", len(errs), errs[0])
	}
	var before []ack
	for _, k := range acks {
		if k.at.Before(failed) {
			before = append(before, k)
		}
	}
	if !strings.Contains(body, "journal") || !strings.Contains(body, "no space left on device") {
		t.Errorf("/readyz on a full disk: %q", body)
	}

	// Free the disk, restart the proxy on the same data directory, stop
	// it: the final upload takes what the journal held.
	os.Remove(filler)
	stopped := make(chan error, 1)
	go func() { cmd.Process.Signal(os.Interrupt); stopped <- cmd.Wait() }()
	var stopErr error
	select {
	case stopErr = <-stopped:
	case <-time.After(20 * time.Second):
		cmd.Process.Kill()
		t.Fatalf("the proxy did not exit within 20 s of SIGINT with a failed journal:\n%s", out)
	}
	t.Logf("stopped after %s", time.Since(start))
	cmd, _ = startAmber(t, args...)
	waitHTTP(t, "http://"+admin+"/readyz", 200)
	stopProxy(t, cmd)
	t.Logf("restarted and stopped after %s", time.Since(start))

	held := mustHold(t, archivedOffsets(t, arch, map[string]int32{"full": 3}), before)
	fetched := backfillCmd(t, nil, arch, c.ListenAddrs())
	cmp := verifyAgainstCmd(t, nil, arch, c.ListenAddrs(), "full")
	t.Logf("RESULT journal disk full: /readyz %q; the proxy exited with %v; %d records acknowledged, %d before the failure, all %d archived by the proxy; backfill fetched %d offsets; verify --against matched %d",
		strings.TrimSpace(body), stopErr, len(acks), len(before), held, fetched, cmp.Matched)
	if fetched == 0 {
		t.Error("the backfill fetched nothing: the journal never refused a batch")
	}
}

// waitHTTPWithin is waitHTTP with a deadline of the caller's choosing.
func waitHTTPWithin(t *testing.T, url string, want int, within time.Duration) string {
	t.Helper()
	deadline := time.Now().Add(within)
	var code int
	var body string
	for time.Now().Before(deadline) {
		if code, body = httpGet(url); code == want {
			return body
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("GET %s: %d %q, want %d", url, code, body, want)
	return ""
}

// TestTwoProxiesOneArchiveOneKilled: two proxies, each with its own data
// directory, archive into one MinIO prefix while idempotent producers
// stream through them: one bootstrapped from proxy A, one from B, one
// from both. A is killed with SIGKILL mid-stream; the producer of A waits,
// the one of both fails over to B if it was on A (franz-go asks the
// brokers it knows for metadata before its other seed: a few seconds).
// Once they have made progress A is restarted on its data directory: its
// producer resumes and A uploads what its journal held. Every
// acknowledged record is archived, under two writer ids, with no
// backfill, and amber verify --against passes.
func TestTwoProxiesOneArchiveOneKilled(t *testing.T) {
	m := testkit.StartMinIO(t)
	m.MakeBucket(t, "shared", false)
	c := testkit.NewCluster(t, kfake.SeedTopics(6, "two"))
	url := m.URL("shared", "gw")
	args := func(listen, data string) []string {
		return []string{"--upstream", strings.Join(c.ListenAddrs(), ","), "--listen", listen, "--admin-listen", "", "--data", data,
			"--archive", url, "--flush-interval", "200ms", "--backfill-interval", "0", "--log-level", "warn"}
	}
	listenA, listenB, dataA, dataB := freePort(t), freePort(t), t.TempDir(), t.TempDir()
	a, _ := startProxyEnv(t, m.Env(), args(listenA, dataA)...)
	b, _ := startProxyEnv(t, m.Env(), args(listenB, dataB)...)
	waitListening(t, listenA)
	waitListening(t, listenB)
	value := []byte("payload")
	ackers := map[string]*acker{
		"A":    startAcker(t, []string{listenA}, "two", value, 8),
		"B":    startAcker(t, []string{listenB}, "two", value, 8),
		"both": startAcker(t, []string{listenA, listenB}, "two", value, 8),
	}
	for _, k := range ackers {
		k.waitCount(t, 300, 30*time.Second)
	}

	a.Process.Kill()
	a.Wait()
	down := map[string]int{}
	for name, k := range ackers {
		down[name] = k.count()
	}
	killed := time.Now()
	ackers["B"].waitCount(t, down["B"]+300, 30*time.Second)       // B serves on
	ackers["both"].waitCount(t, down["both"]+300, 30*time.Second) // through B, if it was on A
	failover := time.Since(killed)
	during := map[string]int{}
	for name, k := range ackers {
		during[name] = k.count() - down[name]
	}
	a, _ = startProxyEnv(t, m.Env(), args(listenA, dataA)...)
	restarted := time.Now()
	ackers["A"].waitCount(t, ackers["A"].count()+300, 30*time.Second)
	resumed := time.Since(restarted)
	var acks []ack
	for name, k := range ackers {
		got, errs := k.finish()
		if len(errs) > 0 {
			t.Fatalf("producer %s: %d errors, first: %v", name, len(errs), errs[0])
		}
		acks = append(acks, got...)
	}
	stopProxy(t, a)
	stopProxy(t, b)

	store := s3Store(t, m, "shared", "gw")
	writers := map[string]bool{}
	store.List(context.Background(), "v1/idx/", func(o archive.ObjectInfo) error {
		writers[strings.Split(o.Key, "/")[2]] = true
		return nil
	})
	if len(writers) != 2 {
		t.Errorf("indexes from %d writers, want 2: %v", len(writers), writers)
	}
	held := mustHold(t, archivedOffsetsIn(t, store, map[string]int32{"two": 6}), acks)
	cmp := verifyAgainstCmd(t, m.Env(), url, c.ListenAddrs(), "two")
	t.Logf("RESULT two proxies, one killed: %d records acknowledged, all %d archived under %d writer ids; while A was down (%s) the producers of A, B and both had %d, %d and %d acknowledged; A's producer resumed %s after its restart; verify --against matched %d",
		len(acks), held, len(writers), failover.Round(time.Millisecond), during["A"], during["B"], during["both"], resumed.Round(time.Millisecond), cmp.Matched)
}
