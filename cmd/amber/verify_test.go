package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/amber-kafka/amber/internal/testkit"
)

// TestVerifyNamesFlippedByte: one byte flipped in an archived segment
// makes verify exit 1 naming the object and the block; in --json, the
// problem lists the object too.
func TestVerifyNamesFlippedByte(t *testing.T) {
	c := testkit.NewCluster(t, kfake.SeedTopics(1, "f"))
	boot := c.ListenAddrs()[0]
	produceValues(t, boot, "f", 0, 50)
	dir := t.TempDir()
	var stdout, stderr bytes.Buffer
	if code := run([]string{"backfill", "--archive", dir, "--bootstrap", boot, "--no-snapshots"}, &stdout, &stderr); code != 0 {
		t.Fatalf("backfill: exit %d\n%s%s", code, stdout.String(), stderr.String())
	}
	segs, _ := filepath.Glob(filepath.Join(dir, "v1", "seg", "*", "*.seg"))
	if len(segs) != 1 {
		t.Fatalf("%d segments, want 1", len(segs))
	}
	b, _ := os.ReadFile(segs[0])
	b[len(b)/2] ^= 0x01
	os.Chmod(segs[0], 0o644)
	if err := os.WriteFile(segs[0], b, 0o644); err != nil {
		t.Fatal(err)
	}
	rel, _ := filepath.Rel(dir, segs[0])
	key := filepath.ToSlash(rel)
	stdout.Reset()
	stderr.Reset()
	code := run([]string{"verify", "--archive", dir}, &stdout, &stderr)
	if code != 1 || !strings.Contains(stdout.String(), key+": SHA-256") || !strings.Contains(stdout.String(), key+" block 0") ||
		!strings.Contains(stderr.String(), "2 problems") {
		t.Errorf("verify of a flipped byte: exit %d\n%s%s", code, stdout.String(), stderr.String())
	}
	stdout.Reset()
	if code := run([]string{"verify", "--archive", "file://" + dir, "--json"}, &stdout, &stderr); code != 1 || !strings.Contains(stdout.String(), `"object": "`+key+`"`) || !strings.Contains(stdout.String(), `"ok": false`) {
		t.Errorf("verify --json: exit %d\n%s", code, stdout.String())
	}
	// --against reads the damaged block too and says so.
	stdout.Reset()
	stderr.Reset()
	if code := run([]string{"verify", "--archive", dir, "--against", boot}, &stdout, &stderr); code != 1 || !strings.Contains(stdout.String(), "error:") {
		t.Errorf("verify --against a damaged archive: exit %d\n%s%s", code, stdout.String(), stderr.String())
	}
}

func TestCompletenessUsage(t *testing.T) {
	for _, tc := range []struct {
		args []string
		code int
		out  string
	}{
		{[]string{"backfill"}, 2, "--archive and --bootstrap are required"},
		{[]string{"backfill", "--help"}, 0, "Examples:"},
		{[]string{"backfill", "--archive", t.TempDir(), "--bootstrap", "nohostport"}, 2, "want HOST:PORT"},
		{[]string{"verify"}, 2, "--archive is required"},
		{[]string{"verify", "--help"}, 0, "Examples:"},
		{[]string{"verify", "--archive", t.TempDir(), "--topic", "x"}, 2, "--topic needs --against"},
		{[]string{"verify", "--archive", "/nonexistent/amber"}, 1, "no archive at"},
		{[]string{"proxy", "--upstream", "a:1", "--backfill-interval", "-1s"}, 2, "--backfill-interval"},
	} {
		var stdout, stderr bytes.Buffer
		code := run(tc.args, &stdout, &stderr)
		all := stdout.String() + stderr.String()
		if code != tc.code || !strings.Contains(all, tc.out) {
			t.Errorf("amber %v: exit %d, want %d; output lacks %q:\n%s", tc.args, code, tc.code, tc.out, all)
		}
	}
}
