package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl/scram"

	"github.com/amber-kafka/amber/archive"
	"github.com/amber-kafka/amber/internal/testkit"
)

// exitCode is a finished command's exit code.
func exitCode(err error) int {
	if ee, ok := err.(*exec.ExitError); ok {
		return ee.ExitCode()
	}
	if err != nil {
		return -1
	}
	return 0
}

// produceValues produces n records with keys and headers straight to
// bootstrap (a proxy or the cluster), numbered from `from`.
func produceValues(t *testing.T, bootstrap, topic string, from, n int, opts ...kgo.Opt) {
	t.Helper()
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(bootstrap), kgo.DefaultProduceTopic(topic)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for i := from; i < from+n; i++ {
		r := &kgo.Record{Key: fmt.Appendf(nil, "k%d", i), Value: fmt.Appendf(nil, "v%d", i), Headers: []kgo.RecordHeader{{Key: "n", Value: fmt.Appendf(nil, "%d", i)}}}
		if err := cl.ProduceSync(ctx, r).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
}

// TestProducerAroundProxyBackfillVerify is the whole story with the real
// binary: a producer bypasses the proxy; verify --against fails and
// names the hole; the integrity check passes; amber backfill fetches
// exactly the hole; verify --against passes and ls shows no hole.
func TestProducerAroundProxyBackfillVerify(t *testing.T) {
	c := testkit.NewCluster(t, kfake.SeedTopics(1, "orders"))
	boot := c.ListenAddrs()[0]
	listen, data := freePort(t), t.TempDir()
	cmd, _ := startAmber(t, "proxy", "--upstream", strings.Join(c.ListenAddrs(), ","), "--listen", listen, "--admin-listen", "",
		"--data", data, "--backfill-interval", "0", "--log-level", "warn")
	waitListening(t, listen)
	produceValues(t, listen, "orders", 0, 20)
	produceValues(t, boot, "orders", 20, 10) // around the proxy
	produceValues(t, listen, "orders", 30, 10)
	stopProxy(t, cmd)

	out, errOut, err := amberEnv(t, nil, "verify", "--archive", data, "--against", boot)
	if exitCode(err) != 1 || !strings.Contains(out, "orders/0 missing from the archive: [20,30)") || !strings.Contains(out, "MISMATCH") {
		t.Fatalf("verify --against before backfill: exit %d\n%s%s", exitCode(err), out, errOut)
	}
	if out, errOut, err := amberEnv(t, nil, "verify", "--archive", data); err != nil || !strings.Contains(out, "checks out") {
		t.Fatalf("verify (integrity): %v\n%s%s", err, out, errOut)
	}
	out, errOut, err = amberEnv(t, nil, "backfill", "--archive", data, "--bootstrap", boot)
	if err != nil || !strings.Contains(out, "Fetched 10 offsets in 10 batches") || !strings.Contains(out, "[20,30)") {
		t.Fatalf("backfill: %v\n%s%s", err, out, errOut)
	}
	out, errOut, err = amberEnv(t, nil, "verify", "--archive", data, "--against", boot, "--json")
	var cmp struct {
		archive.Comparison
		OK bool `json:"ok"`
	}
	if err != nil || json.Unmarshal([]byte(out), &cmp) != nil || !cmp.OK || cmp.Matched != 40 {
		t.Fatalf("verify --against after backfill: %v\n%s%s", err, out, errOut)
	}
	cov := lsJSON(t, nil, data)
	if n := totalRecords(t, cov); n != 40 {
		t.Errorf("ls counts %d records, want 40", n)
	}
	if out, _, err := amberEnv(t, nil, "verify", "--archive", data); err != nil {
		t.Errorf("verify after backfill: %v\n%s", err, out)
	}
}

// TestBackfillRecordsKnownLoss: records produced around the proxy and
// then deleted by retention before any backfill are reported as a known
// loss by backfill and by ls, not as a hole; verify --against passes,
// since the cluster no longer has them either.
func TestBackfillRecordsKnownLoss(t *testing.T) {
	c := testkit.NewCluster(t, kfake.SeedTopics(1, "r"))
	boot := c.ListenAddrs()[0]
	dir := t.TempDir()
	produceValues(t, boot, "r", 0, 30)
	if err := c.DeleteRecords("r", 0, 12); err != nil {
		t.Fatal(err)
	}
	out, errOut, err := amberEnv(t, nil, "backfill", "--archive", dir, "--bootstrap", boot)
	if err != nil || !strings.Contains(out, "[0,12) deleted") || !strings.Contains(out, "recorded 12 offsets as known loss") {
		t.Fatalf("backfill: %v\n%s%s", err, out, errOut)
	}
	cov := lsJSON(t, nil, dir)
	if len(cov) != 1 || fmt.Sprint(cov[0].KnownLoss) != "[{0 12 deleted}]" || len(cov[0].Holes) != 0 || cov[0].Records != 18 {
		t.Errorf("ls: %+v", cov)
	}
	if out, _, _ := amberEnv(t, nil, "ls", "--archive", dir); !strings.Contains(out, "KNOWN LOSS") || !strings.Contains(out, "[0,12)") {
		t.Errorf("ls table lacks the known loss:\n%s", out)
	}
	if out, errOut, err := amberEnv(t, nil, "verify", "--archive", dir, "--against", boot); err != nil {
		t.Errorf("verify --against: %v\n%s%s", err, out, errOut)
	}
	// Nothing more to do on a second run.
	if out, _, err := amberEnv(t, nil, "backfill", "--archive", dir, "--bootstrap", boot, "--json"); err != nil || !strings.Contains(out, `"offsets": 0`) || !strings.Contains(out, `"known_loss_offsets": 0`) {
		t.Errorf("second backfill: %v\n%s", err, out)
	}
}

// TestProxyBackgroundBackfill: with --backfill-interval the proxy
// converges to a complete archive on its own: records produced around it
// and the markers of transactions through it are fetched into its
// journal and uploaded, while it runs.
func TestProxyBackgroundBackfill(t *testing.T) {
	c := testkit.NewCluster(t, kfake.SeedTopics(2, "bg"))
	boot := c.ListenAddrs()[0]
	listen, admin, data := freePort(t), freePort(t), t.TempDir()
	startAmber(t, "proxy", "--upstream", strings.Join(c.ListenAddrs(), ","), "--listen", listen, "--admin-listen", admin,
		"--data", data, "--backfill-interval", "200ms", "--sync-timeout", "100ms", "--flush-interval", "100ms", "--log-level", "warn")
	waitListening(t, listen)
	produceValues(t, listen, "bg", 0, 10)
	produceValues(t, boot, "bg", 10, 10)
	produceTxns(t, listen, "bg")
	deadline := time.Now().Add(20 * time.Second)
	for {
		out, _, err := amberEnv(t, nil, "verify", "--archive", data, "--against", boot)
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the proxy's background backfill did not converge:\n%s", out)
		}
		time.Sleep(200 * time.Millisecond)
	}
	var holes int
	for _, p := range lsJSON(t, nil, data) {
		holes += len(p.Holes)
	}
	if holes != 0 {
		t.Errorf("%d holes left after convergence", holes)
	}
	_, metrics := httpGet("http://" + admin + "/metrics")
	if !strings.Contains(metrics, "amber_backfill_passes_total") || strings.Contains(metrics, "amber_backfill_batches_total 0\n") {
		t.Errorf("backfill metrics missing or zero")
	}
}

// TestBackfillToS3: backfill writes into an S3 archive on a real MinIO;
// both verifications pass on it.
func TestBackfillToS3(t *testing.T) {
	m := testkit.StartMinIO(t)
	m.MakeBucket(t, "backfill", true)
	c := testkit.NewCluster(t, kfake.SeedTopics(3, "s3t"))
	boot := c.ListenAddrs()[0]
	produceValues(t, boot, "s3t", 0, 60)
	url := m.URL("backfill", "prod")
	if out, errOut, err := amberEnv(t, m.Env(), "backfill", "--archive", url, "--bootstrap", boot, "--flush-bytes", "4096"); err != nil || !strings.Contains(out, "Fetched 60 offsets") {
		t.Fatalf("backfill: %v\n%s%s", err, out, errOut)
	}
	if n := totalRecords(t, lsJSON(t, m.Env(), url)); n != 60 {
		t.Errorf("ls counts %d records, want 60", n)
	}
	if out, errOut, err := amberEnv(t, m.Env(), "verify", "--archive", url); err != nil {
		t.Errorf("verify: %v\n%s%s", err, out, errOut)
	}
	if out, errOut, err := amberEnv(t, m.Env(), "verify", "--archive", url, "--against", boot, "--topic", "s3t"); err != nil {
		t.Errorf("verify --against: %v\n%s%s", err, out, errOut)
	}
}

// produceTxns produces a committed and an aborted transaction through
// bootstrap: their markers are holes only a backfill fills.
func produceTxns(t *testing.T, bootstrap, topic string) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(bootstrap), kgo.DefaultProduceTopic(topic), kgo.TransactionalID(topic+"-tx"))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, commit := range []bool{true, false} {
		if err := cl.BeginTransaction(); err != nil {
			t.Fatal(err)
		}
		for i := 0; i < 4; i++ {
			if err := cl.ProduceSync(ctx, &kgo.Record{Value: fmt.Appendf(nil, "tx%d", i)}).FirstErr(); err != nil {
				t.Fatal(err)
			}
		}
		if err := cl.EndTransaction(ctx, kgo.TransactionEndTry(commit)); err != nil {
			t.Fatal(err)
		}
	}
}

// TestBackfillAndVerifyWithSASL: against a cluster that requires SASL,
// backfill and verify --against authenticate with their --sasl-* flags
// (the password from the environment), and the proxy's background
// backfill with --backfill-sasl-*; without credentials they fail naming
// the cluster. Records produced around the proxy end in the archive.
func TestBackfillAndVerifyWithSASL(t *testing.T) {
	const pass = "amber-scram-secret-55e1"
	c := testkit.NewCluster(t, kfake.SeedTopics(2, "sec"), kfake.EnableSASL(), kfake.Superuser("SCRAM-SHA-256", "amber", pass))
	boot := c.ListenAddrs()[0]
	auth := kgo.SASL(scram.Auth{User: "amber", Pass: pass}.AsSha256Mechanism())

	// The proxy's background backfill authenticates on its own.
	listen, data := freePort(t), t.TempDir()
	startProxyEnv(t, map[string]string{"AMBER_BACKFILL_SASL_PASSWORD": pass}, "--upstream", strings.Join(c.ListenAddrs(), ","), "--listen", listen,
		"--admin-listen", "", "--data", data, "--backfill-interval", "200ms", "--sync-timeout", "100ms", "--flush-interval", "100ms",
		"--backfill-sasl-mechanism", "SCRAM-SHA-256", "--backfill-sasl-user", "amber", "--log-level", "warn")
	waitListening(t, listen)
	produceValues(t, listen, "sec", 0, 10, auth)
	produceValues(t, boot, "sec", 10, 10, auth) // around the proxy
	env := map[string]string{"AMBER_SASL_PASSWORD": pass}
	sasl := []string{"--sasl-mechanism", "SCRAM-SHA-256", "--sasl-user", "amber"}
	deadline := time.Now().Add(30 * time.Second)
	for {
		out, errOut, err := amberEnv(t, env, append([]string{"verify", "--archive", data, "--against", boot, "--json"}, sasl...)...)
		if err == nil && strings.Contains(out, `"matched": 20`) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the proxy's background backfill (SASL) did not converge: %v\n%s%s", err, out, errOut)
		}
		time.Sleep(200 * time.Millisecond)
	}

	// backfill into another archive: without credentials it fails, with
	// them it fetches everything.
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, amberBin, "backfill", "--archive", dir, "--bootstrap", boot)
	if out, err := cmd.CombinedOutput(); err == nil {
		t.Errorf("backfill without SASL against a SASL cluster succeeded:\n%s", out)
	}
	out, errOut, err := amberEnv(t, env, append([]string{"backfill", "--archive", dir, "--bootstrap", boot}, sasl...)...)
	if err != nil || !strings.Contains(out, "Fetched 20 offsets") {
		t.Fatalf("backfill with SASL: %v\n%s%s", err, out, errOut)
	}
	if out, errOut, err := amberEnv(t, env, append([]string{"verify", "--archive", dir, "--against", boot}, sasl...)...); err != nil {
		t.Errorf("verify --against with SASL: %v\n%s%s", err, out, errOut)
	}
	if _, errOut, err := amberEnv(t, nil, "verify", "--archive", dir, "--against", boot, "--sasl-mechanism", "GSSAPI"); exitCode(err) != 2 || !strings.Contains(errOut, `--sasl-mechanism "GSSAPI"`) {
		t.Errorf("a bad mechanism: exit %d\n%s", exitCode(err), errOut)
	}
	if strings.Contains(out+errOut, pass) {
		t.Error("the SASL password appears in the output")
	}
}
