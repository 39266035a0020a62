package main

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/sasl/plain"

	"github.com/amber-kafka/amber/archive"
	"github.com/amber-kafka/amber/archive/file"
	"github.com/amber-kafka/amber/internal/kafkatest"
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

// TestSecretsStayOutOfLogsAndConfig runs the proxy at debug level with
// every secret it can meet: S3 credentials, an archive encryption key, a
// TLS private key, and clients authenticating with SASL through it (one
// with a wrong password). None may appear in its output, nor in
// --print-config, nor in the errors of restore and ls given wrong
// passwords.
func TestSecretsStayOutOfLogsAndConfig(t *testing.T) {
	const (
		saslPass  = "app-sasl-password-7f3a"
		wrongPass = "wrong-sasl-password-91c2"
		keyHex    = "5ec2e7f10b9d4c3a8e6f2d1b0a9c8e7d6f5a4b3c2d1e0f9a8b7c6d5e4f3a2b1c"
		token     = "session-token-d4e5f6"
	)
	m := testkit.StartMinIO(t)
	m.MakeBucket(t, "sec", false)
	c := testkit.NewCluster(t, kfake.SeedTopics(2, "s"), kfake.EnableSASL(), kfake.Superuser("PLAIN", "app", saslPass))
	dir := t.TempDir()
	keyFile := filepath.Join(dir, "archive.key")
	os.WriteFile(keyFile, []byte(keyHex+"\n"), 0o600)
	ca := testkit.NewCA(t)
	_, certFile, tlsKeyFile := ca.WriteFiles(t, dir, "proxy")
	pemKey, _ := os.ReadFile(tlsKeyFile)
	pemLines := strings.Split(strings.TrimSpace(string(pemKey)), "\n")
	secrets := []string{m.SecretKey, saslPass, wrongPass, keyHex, token, pemLines[1]}

	listen := freePort(t)
	env := m.Env()
	env["AMBER_SASL_PASSWORD"] = saslPass
	args := []string{"--upstream", strings.Join(c.ListenAddrs(), ","), "--listen", listen, "--admin-listen", "",
		"--data", filepath.Join(dir, "data"), "--archive", m.URL("sec", "p"), "--encryption-key-file", keyFile,
		"--tls-cert", certFile, "--tls-key", tlsKeyFile, "--log-level", "debug", "--flush-interval", "100ms"}
	cmd, out := startProxyEnv(t, env, args...)
	waitListening(t, listen)
	tlsOpt := kgo.DialTLSConfig(ca.ClientConfig(t, false))
	for _, pass := range []string{saslPass, wrongPass} {
		cl, err := kgo.NewClient(kgo.SeedBrokers(listen), tlsOpt, kgo.SASL(plain.Auth{User: "app", Pass: pass}.AsMechanism()),
			kgo.DefaultProduceTopic("s"), kgo.RequestRetries(0))
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		err = cl.ProduceSync(ctx, &kgo.Record{Value: []byte("v")}).FirstErr()
		cancel()
		cl.Close()
		if (err == nil) != (pass == saslPass) {
			t.Errorf("produce with password %s: %v", pass, err)
		}
	}
	stopProxy(t, cmd)
	logs := out.String()
	if !strings.Contains(logs, `"level":"debug"`) {
		t.Fatalf("no debug lines: the check would be empty:\n%s", logs)
	}

	env["AWS_SESSION_TOKEN"] = token
	cfgOut, cfgErr, err := amberEnv(t, env, append([]string{"proxy", "--print-config"}, args...)...)
	if err != nil {
		t.Fatalf("--print-config: %v %s", err, cfgErr)
	}
	delete(env, "AWS_SESSION_TOKEN")
	for _, want := range []string{"admin-listen: \"\"", "# AWS_SECRET_ACCESS_KEY=********", "# AWS_SESSION_TOKEN=********", "# AMBER_SASL_PASSWORD=********"} {
		if !strings.Contains(cfgOut, want) {
			t.Errorf("--print-config lacks %q:\n%s", want, cfgOut)
		}
	}

	// Commands that take passwords, given wrong ones.
	restoreOut, restoreErr, err := amberEnv(t, env, "restore", "--archive", m.URL("sec", "p"), "--encryption-key-file", keyFile,
		"--bootstrap", c.ListenAddrs()[0], "--topic", "s:s2", "--sasl-mechanism", "PLAIN", "--sasl-user", "app", "--sasl-password", wrongPass)
	// kfake closes the connection on a failed authentication (Kafka
	// answers SASL_AUTHENTICATION_FAILED): the restore says EOF.
	if err == nil || !strings.Contains(restoreErr, "list target topics") {
		t.Errorf("restore with a wrong SASL password: %v\n%s", err, restoreErr)
	}
	badS3 := map[string]string{"AWS_ACCESS_KEY_ID": m.AccessKey, "AWS_SECRET_ACCESS_KEY": "wrong-s3-secret-0b1c", "AWS_REGION": "us-east-1"}
	secrets = append(secrets, "wrong-s3-secret-0b1c")
	lsOut, lsErr, err := amberEnv(t, badS3, "ls", "--archive", m.URL("sec", "p"))
	if err == nil {
		t.Errorf("ls with a wrong S3 secret succeeded")
	}

	for what, text := range map[string]string{"proxy output": logs, "--print-config": cfgOut + cfgErr,
		"restore with a wrong password": restoreOut + restoreErr, "ls with a wrong secret": lsOut + lsErr} {
		for _, s := range secrets {
			if strings.Contains(text, s) {
				t.Errorf("%s contains the secret %q", what, s)
			}
		}
	}
	t.Logf("RESULT secrets: %d secrets absent from %d lines of debug log, --print-config, restore and ls errors (%q; %q)",
		len(secrets), strings.Count(logs, "\n"), grepLine(restoreErr, "amber restore:"), firstLine(lsErr))
}

// grepLine returns the first line of s containing sub.
func grepLine(s, sub string) string {
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			return strings.TrimSpace(l)
		}
	}
	return ""
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(strings.TrimSpace(s), "\n")
	return line
}

// TestAdminListensOnLocalhostByDefault: without --admin-listen, /metrics,
// /healthz and /readyz are served on 127.0.0.1:9080 only: the socket is
// bound to the loopback address, and this host's other addresses refuse
// the port.
func TestAdminListensOnLocalhostByDefault(t *testing.T) {
	if ln, err := net.Listen("tcp", "127.0.0.1:9080"); err != nil {
		t.Skipf("port 9080 is taken on this host: %v", err)
	} else {
		ln.Close()
	}
	c := testkit.NewCluster(t)
	listen := freePort(t)
	cmd, _ := startProxyEnv(t, nil, "--upstream", strings.Join(c.ListenAddrs(), ","), "--listen", listen, "--data", t.TempDir())
	waitHTTP(t, "http://127.0.0.1:9080/healthz", 200)
	tcp, err := os.ReadFile("/proc/net/tcp")
	if err != nil {
		t.Fatal(err)
	}
	var bound []string
	for _, line := range strings.Split(string(tcp), "\n")[1:] {
		f := strings.Fields(line)
		if len(f) > 3 && strings.HasSuffix(f[1], ":2378") && f[3] == "0A" { // port 9080, LISTEN
			bound = append(bound, f[1])
		}
	}
	if len(bound) != 1 || bound[0] != "0100007F:2378" {
		t.Errorf("admin sockets listening on port 9080: %v, want only 0100007F:2378 (127.0.0.1)", bound)
	}
	addrs, _ := net.InterfaceAddrs()
	tried := 0
	for _, a := range addrs {
		ip, _, _ := net.ParseCIDR(a.String())
		if ip == nil || ip.IsLoopback() {
			continue
		}
		tried++
		if conn, err := net.DialTimeout("tcp", net.JoinHostPort(ip.String(), "9080"), time.Second); err == nil {
			conn.Close()
			t.Errorf("the admin port answers on %s", ip)
		}
	}
	if v6, err := os.ReadFile("/proc/net/tcp6"); err == nil && strings.Contains(string(v6), ":2378 00000000000000000000000000000000:0000 0A") {
		t.Error("an IPv6 socket listens on port 9080")
	}
	stopProxy(t, cmd)
	t.Logf("RESULT admin default: listening on %v only; refused on %d other addresses of this host", bound, tried)
}

// loadConn is one client connection of the load test: it owns a few
// partitions, all led by one broker, and produces one record to each per
// round.
type loadConn struct {
	id         int
	addr       string // the proxy's listener for the partitions' leader
	partitions []int32
	rounds     int
	acks       []ack
	consumed   int
	err        error
}

// run produces rounds until the deadline, then reads its partitions back
// and checks that each holds exactly its records, in order.
func (lc *loadConn) run(topic string, deadline time.Time) {
	conn, err := kafkatest.DialRaw(lc.addr)
	if err != nil {
		lc.err = err
		return
	}
	defer conn.Close()
	for time.Now().Before(deadline) {
		req := kmsg.NewPtrProduceRequest()
		req.SetVersion(9)
		req.Acks, req.TimeoutMillis = -1, 30000
		rt := kmsg.NewProduceRequestTopic()
		rt.Topic = topic
		for _, p := range lc.partitions {
			rp := kmsg.NewProduceRequestTopicPartition()
			rp.Partition = p
			rp.Records = testkit.RecordBatch(fmt.Appendf(nil, "c%d", lc.id), fmt.Appendf(nil, "c%d-p%d-r%d", lc.id, p, lc.rounds))
			rt.Partitions = append(rt.Partitions, rp)
		}
		req.Topics = append(req.Topics, rt)
		resp, err := conn.Request(req)
		if err != nil {
			lc.err = fmt.Errorf("round %d: %w", lc.rounds, err)
			return
		}
		now := time.Now()
		for _, t := range resp.(*kmsg.ProduceResponse).Topics {
			for _, p := range t.Partitions {
				if err := kerr.ErrorForCode(p.ErrorCode); err != nil {
					lc.err = fmt.Errorf("round %d: %s/%d: %w", lc.rounds, t.Topic, p.Partition, err)
					return
				}
				lc.acks = append(lc.acks, ack{place{t.Topic, p.Partition, p.BaseOffset}, now})
			}
		}
		lc.rounds++
	}
	// Consume: every partition holds this connection's records, in order.
	for _, p := range lc.partitions {
		var got []string
		for offset := int64(0); len(got) < lc.rounds; {
			req := kmsg.NewPtrFetchRequest()
			req.SetVersion(11)
			req.MaxWaitMillis, req.MaxBytes = 100, 1<<20
			rt := kmsg.NewFetchRequestTopic()
			rt.Topic = topic
			rp := kmsg.NewFetchRequestTopicPartition()
			rp.Partition, rp.FetchOffset, rp.PartitionMaxBytes = p, offset, 1<<20
			rt.Partitions = append(rt.Partitions, rp)
			req.Topics = append(req.Topics, rt)
			resp, err := conn.Request(req)
			if err != nil {
				lc.err = fmt.Errorf("fetch %d@%d: %w", p, offset, err)
				return
			}
			fp := resp.(*kmsg.FetchResponse).Topics[0].Partitions[0]
			if err := kerr.ErrorForCode(fp.ErrorCode); err != nil {
				lc.err = fmt.Errorf("fetch %d@%d: %w", p, offset, err)
				return
			}
			n := len(got)
			protocol.SplitBatches(fp.RecordBatches, func(h protocol.BatchHeader, b []byte) error {
				recs, err := protocol.DecodeRecords(b, &h, h.FirstOffset, nil)
				for _, r := range recs {
					if r.Offset >= offset {
						got = append(got, string(r.Value))
						offset = r.Offset + 1
					}
				}
				return err
			})
			if len(got) == n {
				lc.err = fmt.Errorf("fetch %d@%d: nothing more, %d of %d records read", p, offset, len(got), lc.rounds)
				return
			}
		}
		for r, v := range got {
			if want := fmt.Sprintf("c%d-p%d-r%d", lc.id, p, r); v != want {
				lc.err = fmt.Errorf("partition %d offset %d holds %q, want %q", p, r, v, want)
				return
			}
		}
		lc.consumed += len(got)
	}
}

// procStatus reads a field (in kB) of /proc/PID/status.
func procStatus(pid int, field string) int64 {
	b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, field+":") {
			var kb int64
			fmt.Sscan(strings.TrimPrefix(line, field+":"), &kb)
			return kb << 10
		}
	}
	return 0
}

// metric reads one unlabelled value from a Prometheus text page.
func metric(page, name string) float64 {
	for _, line := range strings.Split(page, "\n") {
		if v, ok := strings.CutPrefix(line, name+" "); ok {
			var f float64
			fmt.Sscan(v, &f)
			return f
		}
	}
	return 0
}

// TestLoadThousandConnectionsTenThousandPartitions: 1,000 client
// connections produce (acks=all, sync durability) to 10,000 partitions
// through one proxy process for 20 s, each owning ten partitions led by
// one broker, then read them back. Every connection must complete rounds
// and read back exactly its records; the proxy's peak RSS and Go heap are
// reported and bounded; every acknowledged record is archived and amber
// verify --against passes over all 10,000 partitions.
func TestLoadThousandConnectionsTenThousandPartitions(t *testing.T) {
	if testing.Short() {
		t.Skip("20 s of load: run without -short")
	}
	const (
		topic                   = "load"
		conns, partitions       = 1000, 10000
		duration                = 20 * time.Second
		maxRSS            int64 = 1 << 30
	)
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err == nil && lim.Cur < 8192 {
		lim.Cur = min(lim.Max, 65536)
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil || lim.Cur < 8192 {
			t.Skipf("cannot raise the file descriptor limit to 8192 (%d): %v", lim.Cur, err)
		}
	}
	c := testkit.NewCluster(t, kfake.SeedTopics(partitions, topic))
	arch := filepath.Join(t.TempDir(), "archive")
	listen, admin := freePort(t), freePort(t)
	cmd, _ := startAmber(t, "proxy", "--upstream", strings.Join(c.ListenAddrs(), ","), "--listen", listen, "--admin-listen", admin,
		"--data", t.TempDir(), "--archive", arch, "--flush-interval", "1s", "--backfill-interval", "0", "--log-level", "warn")
	waitHTTP(t, "http://"+admin+"/readyz", 200)
	pid := cmd.Process.Pid
	baseRSS := procStatus(pid, "VmRSS")

	// Leaders and the proxy's listener for each, from metadata through
	// the proxy.
	cl, err := kgo.NewClient(kgo.SeedBrokers(listen))
	if err != nil {
		t.Fatal(err)
	}
	meta, err := kadm.NewClient(cl).Metadata(context.Background(), topic)
	cl.Close()
	if err != nil {
		t.Fatal(err)
	}
	addrOf := map[int32]string{}
	for _, b := range meta.Brokers {
		addrOf[b.NodeID] = net.JoinHostPort(b.Host, fmt.Sprint(b.Port))
	}
	byLeader := map[int32][]int32{}
	for _, p := range meta.Topics[topic].Partitions {
		byLeader[p.Leader] = append(byLeader[p.Leader], p.Partition)
	}
	// Connections per leader in proportion to its partitions (largest
	// remainders get the connections left over), each with a contiguous
	// share of them.
	leaders := make([]int32, 0, len(byLeader))
	shares := map[int32]int{}
	given := 0
	for leader, ps := range byLeader {
		leaders = append(leaders, leader)
		shares[leader] = len(ps) * conns / partitions
		given += shares[leader]
	}
	slices.SortFunc(leaders, func(a, b int32) int {
		return len(byLeader[b])*conns%partitions - len(byLeader[a])*conns%partitions
	})
	for i := 0; given < conns; i, given = i+1, given+1 {
		shares[leaders[i%len(leaders)]]++
	}
	var lcs []*loadConn
	for _, leader := range leaders {
		ps := byLeader[leader]
		slices.Sort(ps)
		share := shares[leader]
		for i := range share {
			lo, hi := i*len(ps)/share, (i+1)*len(ps)/share
			lcs = append(lcs, &loadConn{id: len(lcs), addr: addrOf[leader], partitions: ps[lo:hi]})
		}
	}

	// Sample the proxy's memory while the load runs.
	stopSampling := make(chan struct{})
	var peakHeap, peakConns float64
	var rssEvery5s []string // RSS in MiB every 5 s: bounded means flat
	sampled := make(chan struct{})
	start := time.Now()
	go func() {
		defer close(sampled)
		next := start.Add(5 * time.Second)
		for {
			select {
			case <-stopSampling:
				return
			case <-time.After(250 * time.Millisecond):
			}
			if code, page := httpGet("http://" + admin + "/metrics"); code == 200 {
				peakHeap = max(peakHeap, metric(page, "go_memstats_heap_inuse_bytes"))
				peakConns = max(peakConns, metric(page, "amber_proxy_connections_active"))
			}
			if time.Now().After(next) {
				rssEvery5s = append(rssEvery5s, fmt.Sprint(procStatus(pid, "VmRSS")>>20))
				next = next.Add(5 * time.Second)
			}
		}
	}()
	deadline := start.Add(duration)
	var wg sync.WaitGroup
	for _, lc := range lcs {
		wg.Add(1)
		go func() { defer wg.Done(); lc.run(topic, deadline) }()
	}
	wg.Wait()
	took := time.Since(start)
	close(stopSampling)
	<-sampled
	peakRSS := procStatus(pid, "VmHWM")
	stopProxy(t, cmd)

	var acks []ack
	var rounds []int
	failed := 0
	for _, lc := range lcs {
		if lc.err != nil {
			if failed++; failed <= 5 {
				t.Errorf("connection %d (%d partitions at %s): %v", lc.id, len(lc.partitions), lc.addr, lc.err)
			}
		}
		if lc.rounds == 0 || lc.consumed != lc.rounds*len(lc.partitions) {
			t.Errorf("connection %d starved: %d rounds, %d records read back", lc.id, lc.rounds, lc.consumed)
		}
		acks = append(acks, lc.acks...)
		rounds = append(rounds, lc.rounds)
	}
	slices.Sort(rounds)
	if peakRSS > maxRSS {
		t.Errorf("the proxy's peak RSS is %d MiB, over %d MiB", peakRSS>>20, maxRSS>>20)
	}
	held := mustHold(t, archivedOffsets(t, arch, map[string]int32{topic: partitions}), acks)
	cmp := verifyAgainstCmd(t, nil, arch, c.ListenAddrs(), topic)
	t.Logf("RESULT load: %d connections, %d partitions, %s: %d records acknowledged (%.0f/s), all %d archived and read back; rounds per connection min %d, median %d, max %d; proxy RSS %d MiB idle, every 5 s %s MiB, peak %d MiB; Go heap in use peak %.0f MiB; open connections peak %.0f; verify --against matched %d in %d partitions",
		len(lcs), partitions, took.Round(time.Millisecond), len(acks), float64(len(acks))/took.Seconds(), held,
		rounds[0], rounds[len(rounds)/2], rounds[len(rounds)-1], baseRSS>>20, strings.Join(rssEvery5s, ", "), peakRSS>>20, peakHeap/(1<<20), peakConns, cmp.Matched, len(cmp.Partitions))
}
