package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/amber-kafka/amber/archive"
	"github.com/amber-kafka/amber/archive/export"
	"github.com/amber-kafka/amber/internal/testkit"
)

// exportFiles maps every file of an export directory to its inode
// change time and size, to tell what a run wrote.
func exportFiles(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			fi, _ := d.Info()
			rel, _ := filepath.Rel(dir, p)
			out[filepath.ToSlash(rel)] = fmt.Sprintf("%d %s", fi.Size(), fi.ModTime().Format(time.RFC3339Nano))
		}
		return nil
	})
	return out
}

func exportJSON(t *testing.T, env map[string]string, args ...string) export.Report {
	t.Helper()
	out, errOut, err := amberEnv(t, env, append([]string{"export", "--json"}, args...)...)
	if err != nil {
		t.Fatalf("amber export %v: %v\n%s%s", args, err, out, errOut)
	}
	var rep export.Report
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("export --json: %v\n%s", err, out)
	}
	return rep
}

func coverageByTopic(cov []archive.PartitionCoverage) map[string]int64 {
	out := map[string]int64{}
	for _, c := range cov {
		out[c.Topic] += c.Records
	}
	return out
}

// TestExportFromMinIOThenOffline is the air gap end to end with the real
// binary: a proxy archives into MinIO in two runs; a signed export after
// each adds only what is new; filtered exports hold only what was asked;
// the export imports into a second MinIO (the far side). Then the source
// bucket is emptied and MinIO frozen, and from the export alone verify
// passes with the right key and fails with another, ls shows every
// record, and restore brings back every record exactly.
func TestExportFromMinIOThenOffline(t *testing.T) {
	m := testkit.StartMinIO(t)
	m.MakeBucket(t, "src", false)
	c := testkit.NewCluster(t, kfake.SeedTopics(2, "orders"), kfake.SeedTopics(1, "audit"))
	url := m.URL("src", "prod")
	data, work := t.TempDir(), t.TempDir()
	dir := filepath.Join(work, "usb", "kafka")
	key := filepath.Join(work, "export.key")
	if out, errOut, err := amberEnv(t, nil, "export", "--gen-key", key); err != nil || !strings.Contains(out, "key id") {
		t.Fatalf("--gen-key: %v\n%s%s", err, out, errOut)
	}

	proxyRun := func(orders, audit int, commit bool) {
		t.Helper()
		listen := freePort(t)
		cmd, _ := startProxyEnv(t, m.Env(), "--upstream", strings.Join(c.ListenAddrs(), ","), "--listen", listen,
			"--admin-listen", "", "--data", data, "--archive", url, "--flush-interval", "200ms")
		waitListening(t, listen)
		produceValues(t, listen, "orders", 0, orders)
		produceValues(t, listen, "audit", 0, audit)
		if commit {
			cl, err := kgo.NewClient(kgo.SeedBrokers(listen))
			if err != nil {
				t.Fatal(err)
			}
			var offs kadm.Offsets
			offs.Add(kadm.Offset{Topic: "orders", Partition: 0, At: 5, LeaderEpoch: -1})
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			if _, err := kadm.NewClient(cl).CommitOffsets(ctx, "billing", offs); err != nil {
				t.Fatal(err)
			}
			cancel()
			cl.Close()
		}
		stopProxy(t, cmd)
	}
	proxyRun(100, 30, true)
	between := time.Now()
	time.Sleep(10 * time.Millisecond)

	rep := exportJSON(t, m.Env(), "--archive", url, "--out", dir, "--sign-key", key)
	if rep.Run != 1 || rep.Copied == 0 || rep.Records != 130 || rep.Events == 0 || rep.SignedBy == "" {
		t.Fatalf("first export: %+v", rep)
	}
	first := rep.Copied
	if out, _, err := amberEnv(t, m.Env(), "export", "--archive", url, "--out", dir, "--sign-key", key); err != nil || !strings.Contains(out, "nothing new") {
		t.Fatalf("export again with nothing new: %v\n%s", err, out)
	}

	before := exportFiles(t, dir)
	proxyRun(50, 0, false)
	rep = exportJSON(t, m.Env(), "--archive", url, "--out", dir, "--sign-key", key)
	if rep.Run != 2 || rep.Present != first || rep.Records != 50 || rep.Files != 2*rep.Copied {
		t.Fatalf("incremental export: %+v (first run copied %d)", rep, first)
	}
	after := exportFiles(t, dir)
	for k, v := range before {
		if after[k] != v {
			t.Errorf("%s was rewritten by the incremental export", k)
		}
	}
	if n := len(after) - len(before); n != rep.Files+2 { // and a manifest and its signature
		t.Errorf("incremental export added %d files, want %d", n, rep.Files+2)
	}

	// Filters: one topic; a time window ending between the proxy runs.
	onlyAudit, firstRun := filepath.Join(work, "audit"), filepath.Join(work, "first-run")
	exportJSON(t, m.Env(), "--archive", url, "--out", onlyAudit, "--topic", "audit")
	exportJSON(t, m.Env(), "--archive", url, "--out", firstRun, "--until", between.UTC().Format(time.RFC3339Nano))

	// The far side: a second MinIO.
	far := testkit.StartMinIO(t)
	far.MakeBucket(t, "far-side", false)
	if out, errOut, err := amberEnv(t, far.Env(), "import", "--from", dir, "--archive", far.URL("far-side", "prod"), "--public-key", key+".pub"); err != nil {
		t.Fatalf("import: %v\n%s%s", err, out, errOut)
	}
	sourceCov := coverageByTopic(lsJSON(t, m.Env(), url))
	if got := coverageByTopic(lsJSON(t, far.Env(), far.URL("far-side", "prod"))); fmt.Sprint(got) != fmt.Sprint(sourceCov) {
		t.Errorf("imported archive holds %v, the source %v", got, sourceCov)
	}

	// Now the source is gone and its store unreachable.
	want := map[string]map[int32][]string{}
	for _, topic := range []string{"orders", "audit"} {
		want[topic] = topicDigest(t, c.ListenAddrs(), topic)
	}
	srcStore := s3Store(t, m, "src", "")
	var keys []string
	srcStore.List(context.Background(), "", func(o archive.ObjectInfo) error { keys = append(keys, o.Key); return nil })
	for _, k := range keys {
		if err := srcStore.Delete(context.Background(), k); err != nil {
			t.Fatal(err)
		}
	}
	m.Stop()
	offline := map[string]string{"AWS_ENDPOINT_URL": "http://127.0.0.1:1", "AWS_ACCESS_KEY_ID": "", "AWS_SECRET_ACCESS_KEY": ""}

	out, errOut, err := amberEnv(t, offline, "verify", "--archive", dir, "--public-key", key+".pub")
	if err != nil || !strings.Contains(out, "every run is signed by key "+rep.SignedBy) {
		t.Fatalf("verify offline: %v\n%s%s", err, out, errOut)
	}
	otherKey := filepath.Join(work, "other.key")
	amberEnv(t, nil, "export", "--gen-key", otherKey)
	if out, _, err := amberEnv(t, offline, "verify", "--archive", dir, "--public-key", otherKey+".pub"); err == nil || !strings.Contains(out, "not by the --public-key given") {
		t.Errorf("verify with another key: %v\n%s", err, out)
	}
	if got := coverageByTopic(lsJSON(t, offline, dir)); got["orders"] != 150 || got["audit"] != 30 || fmt.Sprint(got) != fmt.Sprint(sourceCov) {
		t.Errorf("ls of the export: %v, source %v", got, sourceCov)
	}
	if got := coverageByTopic(lsJSON(t, offline, onlyAudit)); len(got) != 1 || got["audit"] != 30 {
		t.Errorf("--topic audit export holds %v", got)
	}
	if got := coverageByTopic(lsJSON(t, offline, firstRun)); got["orders"] != 100 || got["audit"] != 30 {
		t.Errorf("--until export holds %v, want the first proxy run's 100 orders and 30 audit", got)
	}
	dst := testkit.NewCluster(t)
	if out, errOut, err := amberEnv(t, offline, "restore", "--archive", dir, "--bootstrap", strings.Join(dst.ListenAddrs(), ","),
		"--topic", "orders", "--topic", "audit", "--groups", "billing"); err != nil {
		t.Fatalf("restore from the export: %v\n%s%s", err, out, errOut)
	}
	for topic, w := range want {
		if got := topicDigest(t, dst.ListenAddrs(), topic); fmt.Sprint(got) != fmt.Sprint(w) {
			t.Errorf("%s restored from the export differs from the source", topic)
		}
	}
}

// TestExportVerifyCommandDetectsTampering: with the binary's own checks
// (in process), one byte changed, a file removed and a file added are
// each found and named; a tar export verifies in place.
func TestExportVerifyCommandDetectsTampering(t *testing.T) {
	c := testkit.NewCluster(t, kfake.SeedTopics(2, "t"))
	boot := c.ListenAddrs()[0]
	produceValues(t, boot, "t", 0, 40)
	src, work := t.TempDir(), t.TempDir()
	var stdout, stderr bytes.Buffer
	if code := run([]string{"backfill", "--archive", src, "--bootstrap", boot, "--no-snapshots"}, &stdout, &stderr); code != 0 {
		t.Fatalf("backfill: exit %d\n%s%s", code, stdout.String(), stderr.String())
	}
	dir := filepath.Join(work, "export")
	if code := run([]string{"export", "--archive", src, "--out", dir}, &stdout, &stderr); code != 0 || !strings.Contains(stdout.String(), "export run 1") {
		t.Fatalf("export: exit %d\n%s%s", code, stdout.String(), stderr.String())
	}
	stdout.Reset()
	if code := run([]string{"verify", "--archive", dir}, &stdout, &stderr); code != 0 || !strings.Contains(stdout.String(), "every file is the one its manifest lists") {
		t.Fatalf("verify: exit %d\n%s%s", code, stdout.String(), stderr.String())
	}
	segs, _ := filepath.Glob(filepath.Join(dir, "v1", "seg", "*", "*.seg"))
	rel, _ := filepath.Rel(dir, segs[0])
	seg := filepath.ToSlash(rel)

	for name, tc := range map[string]struct {
		tamper func(d string)
		want   string
	}{
		"byte changed": {func(d string) {
			p := filepath.Join(d, seg)
			b, _ := os.ReadFile(p)
			b[len(b)/2] ^= 0x40
			os.WriteFile(p, b, 0o644)
		}, seg + ": SHA-256"},
		"file removed": {func(d string) { os.Remove(filepath.Join(d, seg)) }, seg + ": missing"},
		"file added": {func(d string) {
			os.WriteFile(filepath.Join(d, "v1", "notes.txt"), []byte("hi"), 0o644)
		}, "v1/notes.txt: extra file"},
	} {
		d := filepath.Join(t.TempDir(), "copy")
		if err := os.CopyFS(d, os.DirFS(dir)); err != nil {
			t.Fatal(err)
		}
		tc.tamper(d)
		stdout.Reset()
		stderr.Reset()
		if code := run([]string{"verify", "--archive", d}, &stdout, &stderr); code != 1 || !strings.Contains(stdout.String(), tc.want) || !strings.Contains(stderr.String(), "problems in the export") {
			t.Errorf("%s: exit %d, want 1 naming %q:\n%s%s", name, code, tc.want, stdout.String(), stderr.String())
		}
		stdout.Reset()
		if code := run([]string{"verify", "--archive", d, "--json"}, &stdout, &stderr); code != 1 || !strings.Contains(stdout.String(), `"ok": false`) {
			t.Errorf("%s --json: exit %d\n%s", name, code, stdout.String())
		}
	}

	// --tar: one file, verified (and imported) without extracting.
	tarPath := filepath.Join(work, "export.tar")
	stdout.Reset()
	if code := run([]string{"export", "--archive", src, "--tar", tarPath, "--since", "1h"}, &stdout, &stderr); code != 0 {
		t.Fatalf("export --tar: exit %d\n%s%s", code, stdout.String(), stderr.String())
	}
	stdout.Reset()
	if code := run([]string{"verify", "--archive", tarPath}, &stdout, &stderr); code != 0 || !strings.Contains(stdout.String(), "tar://") {
		t.Errorf("verify of the tar: exit %d\n%s%s", code, stdout.String(), stderr.String())
	}
	stdout.Reset()
	if code := run([]string{"ls", "--archive", tarPath, "--json"}, &stdout, &stderr); code != 0 || !strings.Contains(stdout.String(), `"topic": "t"`) {
		t.Errorf("ls of the tar, in place: exit %d\n%s%s", code, stdout.String(), stderr.String())
	}
	if code := run([]string{"export", "--archive", src, "--tar", tarPath}, &stdout, &stderr); code != 1 || !strings.Contains(stderr.String(), "never added to") {
		t.Errorf("export over an existing tar: exit %d\n%s", code, stderr.String())
	}
	imported := filepath.Join(work, "imported")
	stdout.Reset()
	if code := run([]string{"import", "--from", tarPath, "--archive", imported}, &stdout, &stderr); code != 0 || !strings.Contains(stdout.String(), "files uploaded") {
		t.Errorf("import from the tar: exit %d\n%s%s", code, stdout.String(), stderr.String())
	}
	stdout.Reset()
	if code := run([]string{"ls", "--archive", imported, "--json"}, &stdout, &stderr); code != 0 || !strings.Contains(stdout.String(), `"topic": "t"`) {
		t.Errorf("ls of the imported archive: exit %d\n%s", code, stdout.String())
	}
}

func TestExportImportUsage(t *testing.T) {
	plain := t.TempDir()
	for _, tc := range []struct {
		args []string
		code int
		out  string
	}{
		{[]string{"export"}, 2, "--archive is required"},
		{[]string{"export", "--help"}, 0, "On the far side"},
		{[]string{"export", "--archive", "x"}, 2, "exactly one of --out DIR and --tar FILE"},
		{[]string{"export", "--archive", "x", "--out", "a", "--tar", "b"}, 2, "exactly one of"},
		{[]string{"export", "--archive", "x", "--out", "a", "--since", "2026-02-01", "--until", "2026-01-01"}, 2, "is after --until"},
		{[]string{"export", "--archive", "x", "--out", "a", "--since", "soon"}, 2, "want RFC 3339"},
		{[]string{"export", "--archive", plain, "--out", plain}, 2, "the archive itself"},
		{[]string{"export", "--gen-key", "k", "--archive", "x"}, 2, "only writes a key"},
		{[]string{"export", "--archive", "/nonexistent/amber", "--out", t.TempDir()}, 1, "no archive at"},
		{[]string{"export", "--archive", plain, "--out", t.TempDir(), "--sign-key", "/nonexistent/key"}, 1, "read signing key"},
		{[]string{"import"}, 2, "--from and --archive are required"},
		{[]string{"import", "--help"}, 0, "Examples:"},
		{[]string{"import", "--from", plain, "--archive", t.TempDir()}, 1, "no export at"},
		{[]string{"verify", "--archive", plain, "--public-key", "k.pub"}, 2, "is not an export"},
	} {
		var stdout, stderr bytes.Buffer
		code := run(tc.args, &stdout, &stderr)
		all := stdout.String() + stderr.String()
		if code != tc.code || !strings.Contains(all, tc.out) {
			t.Errorf("amber %v: exit %d, want %d; output lacks %q:\n%s", tc.args, code, tc.code, tc.out, all)
		}
	}
}
