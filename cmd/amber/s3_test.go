package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/amber-kafka/amber/archive"
	"github.com/amber-kafka/amber/archive/s3"
	"github.com/amber-kafka/amber/internal/testkit"
)

// amberEnv runs the amber binary to completion with extra environment.
func amberEnv(t *testing.T, env map[string]string, args ...string) (string, string, error) {
	t.Helper()
	cmd := exec.Command(amberBin, args...)
	cmd.Env = os.Environ()
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	var out, errb syncBuffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	return out.String(), errb.String(), err
}

// startProxyEnv starts `amber proxy` with extra environment.
func startProxyEnv(t *testing.T, env map[string]string, args ...string) (*exec.Cmd, *syncBuffer) {
	t.Helper()
	cmd := exec.Command(amberBin, append([]string{"proxy"}, args...)...)
	cmd.Env = os.Environ()
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	out := &syncBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
			cmd.Wait()
		}
		if t.Failed() {
			t.Logf("amber proxy output:\n%s", out.String())
		}
	})
	return cmd, out
}

func stopProxy(t *testing.T, cmd *exec.Cmd) {
	t.Helper()
	cmd.Process.Signal(syscall.SIGTERM)
	if err := cmd.Wait(); err != nil {
		t.Fatalf("proxy exit: %v", err)
	}
}

// produceN produces n records through bootstrap, returning when all are
// acknowledged.
func produceN(t *testing.T, bootstrap, topic string, n int) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(bootstrap), kgo.DefaultProduceTopic(topic))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	rs := make([]*kgo.Record, n)
	for i := range rs {
		rs[i] = &kgo.Record{Value: fmt.Appendf(nil, "v%d", i)}
	}
	if err := cl.ProduceSync(ctx, rs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
}

func lsJSON(t *testing.T, env map[string]string, url string) []archive.PartitionCoverage {
	t.Helper()
	out, errOut, err := amberEnv(t, env, "ls", "--archive", url, "--json")
	if err != nil {
		t.Fatalf("amber ls: %v: %s", err, errOut)
	}
	var cov []archive.PartitionCoverage
	if err := json.Unmarshal([]byte(out), &cov); err != nil {
		t.Fatalf("ls --json: %v\n%s", err, out)
	}
	return cov
}

func totalRecords(t *testing.T, cov []archive.PartitionCoverage) int64 {
	t.Helper()
	var n int64
	for _, c := range cov {
		n += c.Records
		if len(c.Holes) > 0 {
			t.Errorf("%s/%d: holes %v", c.Topic, c.Partition, c.Holes)
		}
	}
	return n
}

// TestS3ArchiveObjectLock: two proxy runs archive into a MinIO bucket with
// object lock and a compliance retention; afterwards every object key has
// exactly one version, ls shows every record once, and prune refuses with
// a message that says why.
func TestS3ArchiveObjectLock(t *testing.T) {
	m := testkit.StartMinIO(t)
	m.MakeBucket(t, "locked", true)
	setRetention(t, m, "locked")
	c := testkit.NewCluster(t, kfake.SeedTopics(2, "orders"))
	url := m.URL("locked", "prod")
	data := t.TempDir()
	for run := 0; run < 2; run++ {
		listen := freePort(t)
		cmd, _ := startProxyEnv(t, m.Env(), "--upstream", strings.Join(c.ListenAddrs(), ","), "--listen", listen,
			"--admin-listen", "", "--data", data, "--archive", url, "--flush-interval", "200ms")
		waitListening(t, listen)
		produceN(t, listen, "orders", 100)
		stopProxy(t, cmd)
	}
	store := s3Store(t, m, "locked", "prod")
	keys := 0
	store.List(context.Background(), "", func(o archive.ObjectInfo) error {
		keys++
		if n, err := store.Versions(context.Background(), o.Key); err != nil || n != 1 {
			t.Errorf("%s has %d versions (%v), want 1", o.Key, n, err)
		}
		return nil
	})
	if keys < 4 {
		t.Errorf("%d objects after two runs", keys)
	}
	if n := totalRecords(t, lsJSON(t, m.Env(), url)); n != 200 {
		t.Errorf("ls counts %d records, want 200", n)
	}

	// Restore from the bucket into another cluster: record for record.
	dst := testkit.NewCluster(t)
	if out, errOut, err := amberEnv(t, m.Env(), "restore", "--archive", url, "--bootstrap", strings.Join(dst.ListenAddrs(), ","), "--topic", "orders"); err != nil {
		t.Fatalf("restore from S3: %v\n%s%s", err, out, errOut)
	}
	if want, got := topicDigest(t, c.ListenAddrs(), "orders"), topicDigest(t, dst.ListenAddrs(), "orders"); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("restored from S3 differs from the source")
	}

	_, errOut, err := amberEnv(t, m.Env(), "prune", "--archive", url, "--before", "2100-01-01")
	if err == nil || !strings.Contains(errOut, "object lock retention forbids deleting") {
		t.Errorf("prune under retention: %v: %s", err, errOut)
	}
	if n := totalRecords(t, lsJSON(t, m.Env(), url)); n != 200 {
		t.Errorf("after the refused prune ls counts %d records, want 200", n)
	}
}

func waitListening(t *testing.T, addr string) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		if c, err := netDial(addr); err == nil {
			c.Close()
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("nothing listening on %s", addr)
}

func s3Store(t *testing.T, m *testkit.MinIO, bucket, prefix string) *s3.Store {
	t.Helper()
	o, _ := s3.ParseURL(m.URL(bucket, prefix), func(k string) string { return m.Env()[k] })
	s, err := s3.New(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func setRetention(t *testing.T, m *testkit.MinIO, bucket string) {
	t.Helper()
	s := s3Store(t, m, bucket, "")
	mode, days, unit := minio.Compliance, uint(1), minio.Days
	if err := s.Client().SetObjectLockConfig(context.Background(), bucket, &mode, &days, &unit); err != nil {
		t.Fatal(err)
	}
}

// TestS3StoreStoppedUnderLoad freezes MinIO (SIGSTOP) while producers run
// through the proxy, then thaws it: the proxy keeps serving, the backlog
// uploads, and the archive holds every acknowledged record once.
func TestS3StoreStoppedUnderLoad(t *testing.T) {
	m := testkit.StartMinIO(t)
	m.MakeBucket(t, "frozen", true)
	c := testkit.NewCluster(t, kfake.SeedTopics(3, "load"))
	url := m.URL("frozen", "p")
	listen, admin := freePort(t), freePort(t)
	cmd, _ := startProxyEnv(t, m.Env(), "--upstream", strings.Join(c.ListenAddrs(), ","), "--listen", listen,
		"--admin-listen", admin, "--data", t.TempDir(), "--archive", url, "--flush-interval", "100ms", "--upload-timeout", "1s")
	waitListening(t, listen)

	cl, err := kgo.NewClient(kgo.SeedBrokers(listen), kgo.DefaultProduceTopic("load"))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	var acked atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		ctx := context.Background()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			if err := cl.ProduceSync(ctx, &kgo.Record{Value: fmt.Appendf(nil, "v%d", i)}).FirstErr(); err != nil {
				t.Errorf("produce while the store was down: %v", err)
				return
			}
			acked.Add(1)
		}
	}()
	time.Sleep(500 * time.Millisecond)
	m.Stop()
	before := acked.Load()
	time.Sleep(3 * time.Second)
	during := acked.Load() - before
	_, metrics := httpGet("http://" + admin + "/metrics")
	m.Cont()
	time.Sleep(500 * time.Millisecond)
	close(stop)
	wg.Wait()
	if during == 0 {
		t.Fatal("no record acknowledged while the store was frozen: the proxy stalled")
	}
	if !strings.Contains(metrics, "amber_upload_backlog_bytes") || strings.Contains(metrics, "amber_upload_backlog_bytes 0\n") {
		t.Errorf("no upload backlog visible while the store was frozen")
	}
	stopProxy(t, cmd)
	if n := totalRecords(t, lsJSON(t, m.Env(), url)); n != acked.Load() {
		t.Errorf("archive holds %d records, %d were acknowledged", n, acked.Load())
	}
	t.Logf("%d records acknowledged, %d of them while the store was frozen", acked.Load(), during)
}

// TestTwoProxiesOnePrefix: two proxies with their own data directories
// archive into one prefix at once; ls shows the union, nothing twice.
func TestTwoProxiesOnePrefix(t *testing.T) {
	m := testkit.StartMinIO(t)
	m.MakeBucket(t, "shared", false)
	c := testkit.NewCluster(t, kfake.SeedTopics(2, "t"))
	url := m.URL("shared", "two")
	var cmds []*exec.Cmd
	var listens []string
	for i := 0; i < 2; i++ {
		listen := freePort(t)
		cmd, _ := startProxyEnv(t, m.Env(), "--upstream", strings.Join(c.ListenAddrs(), ","), "--listen", listen,
			"--admin-listen", "", "--data", t.TempDir(), "--archive", url, "--flush-interval", "100ms")
		cmds, listens = append(cmds, cmd), append(listens, listen)
	}
	var wg sync.WaitGroup
	for _, l := range listens {
		waitListening(t, l)
		wg.Add(1)
		go func() { defer wg.Done(); produceN(t, l, "t", 150) }()
	}
	wg.Wait()
	for _, cmd := range cmds {
		stopProxy(t, cmd)
	}
	if n := totalRecords(t, lsJSON(t, m.Env(), url)); n != 300 {
		t.Errorf("ls counts %d records from two proxies, want 300", n)
	}
}

// TestArchiveErrorsSayWhatToFix: missing credentials, a missing bucket, a
// wrong key and a corrupted object each give an error naming the fix.
func TestArchiveErrorsSayWhatToFix(t *testing.T) {
	m := testkit.StartMinIO(t)
	m.MakeBucket(t, "bkt", false)
	noCreds := map[string]string{"AWS_ACCESS_KEY_ID": "", "AWS_SECRET_ACCESS_KEY": "", "AWS_REGION": "us-east-1", "HOME": t.TempDir()}
	wrongSecret := map[string]string{"AWS_ACCESS_KEY_ID": m.AccessKey, "AWS_SECRET_ACCESS_KEY": "nope", "AWS_REGION": "us-east-1"}
	for name, tc := range map[string]struct {
		env  map[string]string
		url  string
		want string
	}{
		"no credentials": {noCreds, m.URL("bkt", "x"), "no credentials found: set AWS_ACCESS_KEY_ID"},
		"wrong secret":   {wrongSecret, m.URL("bkt", "x"), "AWS_SECRET_ACCESS_KEY"},
		"missing bucket": {m.Env(), m.URL("nobucket", "x"), `bucket "nobucket" does not exist`},
	} {
		_, errOut, err := amberEnv(t, tc.env, "ls", "--archive", tc.url)
		if err == nil || !strings.Contains(errOut, tc.want) {
			t.Errorf("%s: %v: %q, want it to mention %q", name, err, errOut, tc.want)
		}
	}

	// An encrypted file archive, read without its key, with another key,
	// and with a corrupted index.
	c := testkit.NewCluster(t, kfake.SeedTopics(1, "t"))
	dir := t.TempDir()
	keyFile, otherKey := filepath.Join(dir, "k1"), filepath.Join(dir, "k2")
	os.WriteFile(keyFile, []byte(strings.Repeat("ab", 32)), 0o600)
	os.WriteFile(otherKey, []byte(strings.Repeat("cd", 32)), 0o600)
	listen, arch := freePort(t), filepath.Join(dir, "archive")
	cmd, _ := startProxyEnv(t, nil, "--upstream", strings.Join(c.ListenAddrs(), ","), "--listen", listen, "--admin-listen", "",
		"--data", filepath.Join(dir, "data"), "--archive", arch, "--encryption-key-file", keyFile)
	waitListening(t, listen)
	produceN(t, listen, "t", 10)
	stopProxy(t, cmd)
	if _, errOut, err := amberEnv(t, nil, "ls", "--archive", arch); err == nil || !strings.Contains(errOut, "--encryption-key-file") {
		t.Errorf("no key: %v: %s", err, errOut)
	}
	if _, errOut, err := amberEnv(t, nil, "ls", "--archive", arch, "--encryption-key-file", otherKey); err == nil || !strings.Contains(errOut, "wrong encryption key") {
		t.Errorf("other key: %v: %s", err, errOut)
	}
	if out, errOut, err := amberEnv(t, nil, "ls", "--archive", arch, "--encryption-key-file", keyFile); err != nil || !strings.Contains(out, "t") {
		t.Errorf("right key: %v: %s %s", err, out, errOut)
	}
	idx, _ := filepath.Glob(filepath.Join(arch, "v1", "idx", "*", "*.idx"))
	if len(idx) == 0 {
		t.Fatal("no index objects")
	}
	b, _ := os.ReadFile(idx[0])
	b[len(b)/2] ^= 0xff
	os.Chmod(idx[0], 0o644)
	os.WriteFile(idx[0], b, 0o644)
	rel, _ := filepath.Rel(arch, idx[0])
	if _, errOut, err := amberEnv(t, nil, "ls", "--archive", arch, "--encryption-key-file", keyFile); err == nil || !strings.Contains(errOut, "corrupt") || !strings.Contains(errOut, filepath.ToSlash(rel)) {
		t.Errorf("corrupted index: %v: %s", err, errOut)
	}
}
