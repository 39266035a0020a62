package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.uber.org/zap/zaptest"

	"github.com/amber-kafka/amber/internal/testkit"
)

var amberBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "amber-bin")
	if err != nil {
		panic(err)
	}
	amberBin = filepath.Join(dir, "amber")
	if out, err := exec.Command("go", "build", "-o", amberBin, ".").CombinedOutput(); err != nil {
		panic("build amber: " + err.Error() + "\n" + string(out))
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

func freePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// startAmber runs the amber binary with args and returns the command and
// its combined output so far.
func startAmber(t *testing.T, args ...string) (*exec.Cmd, *syncBuffer) {
	t.Helper()
	cmd := exec.Command(amberBin, args...)
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
			t.Logf("amber output:\n%s", out.String())
		}
	})
	return cmd, out
}

func httpGet(url string) (int, string) {
	c := http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func waitHTTP(t *testing.T, url string, want int) string {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
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

// TestProxyCommand runs `amber proxy` as users do: clients work through
// it, the admin endpoints answer, and SIGTERM drains and exits 0.
func TestProxyCommand(t *testing.T) {
	c := testkit.NewCluster(t, kfake.SeedTopics(2, "t"))
	listen, admin, data := freePort(t), freePort(t), t.TempDir()
	cmd, out := startAmber(t, "proxy", "--upstream", strings.Join(c.ListenAddrs(), ","), "--listen", listen,
		"--admin-listen", admin, "--data", data, "--log-format", "console")
	waitHTTP(t, "http://"+admin+"/healthz", 200)
	waitHTTP(t, "http://"+admin+"/readyz", 200)

	cl, err := kgo.NewClient(kgo.SeedBrokers(listen))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for i := 0; i < 10; i++ {
		if err := cl.ProduceSync(ctx, &kgo.Record{Topic: "t", Value: []byte("v")}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	cl.Close()
	_, metrics := httpGet("http://" + admin + "/metrics")
	for _, want := range []string{
		`amber_proxy_requests_total{api="Produce"} 10`,
		`amber_proxy_requests_total{api="Metadata"}`,
		`amber_proxy_request_duration_seconds_bucket{api="Produce"`,
		`amber_proxy_response_bytes_total{api="Produce"}`,
		`amber_proxy_connections_total`,
		`amber_journal_batches_total 10`,
		`amber_journal_healthy 1`,
		`amber_tee_batches_total 10`,
	} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}

	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("exit after SIGTERM: %v", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("no exit within 15 s of SIGTERM")
	}
	if !strings.Contains(out.String(), "draining") {
		t.Errorf("no drain log line:\n%s", out)
	}

	// What went through is in the archive, as ls shows it.
	var stdout, stderr bytes.Buffer
	if code := run([]string{"ls", "--archive", data, "--json"}, &stdout, &stderr); code != 0 {
		t.Fatalf("ls --json: exit %d: %s", code, stderr.String())
	}
	var cov []map[string]any
	if err := json.Unmarshal(stdout.Bytes(), &cov); err != nil {
		t.Fatalf("ls --json: %v\n%s", err, stdout.String())
	}
	var records float64
	for _, p := range cov {
		for _, k := range []string{"topic", "partition", "start_offset", "end_offset", "records", "batches", "holes", "first_ack_time", "last_ack_time"} {
			if _, ok := p[k]; !ok {
				t.Errorf("ls --json entry lacks %q: %v", k, p)
			}
		}
		records += p["records"].(float64)
	}
	if records != 10 {
		t.Errorf("ls counts %v records, want 10", records)
	}
	stdout.Reset()
	if code := run([]string{"ls", "--archive", "file://" + data}, &stdout, &stderr); code != 0 || !strings.Contains(stdout.String(), "TOPIC") {
		t.Errorf("ls table: exit %d:\n%s%s", code, stdout.String(), stderr.String())
	}
}

// TestReadyzNamesTheUpstream: with no cluster behind it, /readyz is 503
// and says why, while /healthz stays 200.
func TestReadyzNamesTheUpstream(t *testing.T) {
	dead := freePort(t) // nothing listens here
	admin := freePort(t)
	startAmber(t, "proxy", "--upstream", dead, "--listen", freePort(t), "--admin-listen", admin, "--data", t.TempDir())
	waitHTTP(t, "http://"+admin+"/healthz", 200)
	body := waitHTTP(t, "http://"+admin+"/readyz", 503)
	if !strings.Contains(body, "upstream cluster") || !strings.Contains(body, dead) {
		t.Errorf("/readyz body %q does not name the upstream", body)
	}
}

func TestUsage(t *testing.T) {
	for _, tc := range []struct {
		args []string
		code int
		out  string
	}{
		{nil, 0, "Commands:"},
		{[]string{"nonsense"}, 2, "unknown command"},
		{[]string{"proxy"}, 2, "--upstream"},
		{[]string{"proxy", "--upstream", "nohostport"}, 2, "want HOST:PORT"},
		{[]string{"proxy", "--upstream", "a:1", "--tls-cert", "x.pem"}, 2, "go together"},
		{[]string{"proxy", "--bogus"}, 2, "flag provided but not defined"},
		{[]string{"proxy", "--help"}, 0, "Examples:"},
		{[]string{"demo", "--help"}, 0, "Examples:"},
		{[]string{"ls"}, 2, "--archive is required"},
		{[]string{"ls", "--archive", "/nonexistent/amber"}, 1, "no archive at"},
		{[]string{"proxy", "--upstream", "a:1", "--durability", "maybe"}, 2, "want sync or async"},
		{[]string{"restore"}, 2, "--archive is required"},
		{[]string{"restore", "--archive", "x", "--topic", "t", "--by", "wall-clock"}, 2, "want ack-time or record-time"},
		{[]string{"restore", "--archive", "x", "--topic", "t", "--until", "yesterday-ish"}, 2, "want RFC 3339"},
		{[]string{"restore", "--help"}, 0, "continues where it"},
		{[]string{"prune", "--archive", "x"}, 2, "--before are required"},
	} {
		var stdout, stderr bytes.Buffer
		code := run(tc.args, &stdout, &stderr)
		all := stdout.String() + stderr.String()
		if code != tc.code || !strings.Contains(all, tc.out) {
			t.Errorf("amber %v: exit %d, want %d; output lacks %q:\n%s", tc.args, code, tc.code, tc.out, all)
		}
	}
}

// TestDemo runs the demo as `make demo` does.
func TestDemo(t *testing.T) {
	var out bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := demo(ctx, t.TempDir(), 2000, &out, zaptest.NewLogger(t)); err != nil {
		t.Fatalf("demo: %v\n%s", err, out.String())
	}
	for _, want := range []string{"produced 2000 records", "restored", "every partition matches record for record", "resumes at the record billing would have read next"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("demo output lacks %q:\n%s", want, out.String())
		}
	}
	t.Log(out.String())
}

func netDial(addr string) (net.Conn, error) { return net.DialTimeout("tcp", addr, time.Second) }
