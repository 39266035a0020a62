package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestConfigPrecedence: a config file sets values, AMBER_* variables
// override it, flags override both; --print-config shows the result with
// secrets masked.
func TestConfigPrecedence(t *testing.T) {
	f := filepath.Join(t.TempDir(), "amber.yaml")
	os.WriteFile(f, []byte("upstream: [k1:9092, k2:9092]\nlisten: 127.0.0.1:7000\nlog-level: error\ndurability: async\nflush-interval: 3s\n"), 0o644)
	t.Setenv("AMBER_LISTEN", "127.0.0.1:7100")
	t.Setenv("AMBER_FLUSH_INTERVAL", "4s")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "very-secret")
	var out, errb bytes.Buffer
	if code := run([]string{"proxy", "--config", f, "--flush-interval", "5s", "--print-config"}, &out, &errb); code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	got := out.String()
	for _, want := range []string{
		"upstream: k1:9092,k2:9092\n", // file
		"durability: async\n",         // file
		"log-level: error\n",          // file
		"listen: 127.0.0.1:7100\n",    // environment over file
		"flush-interval: 5s\n",        // flag over environment over file
		"# AWS_SECRET_ACCESS_KEY=********",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("--print-config lacks %q:\n%s", want, got)
		}
	}
	if strings.Contains(got, "very-secret") {
		t.Error("a secret was printed")
	}

	os.WriteFile(f, []byte("listn: typo\n"), 0o644)
	if code := run([]string{"proxy", "--config", f, "--print-config"}, &out, &errb); code != 2 || !strings.Contains(errb.String(), `unknown setting "listn"`) {
		t.Errorf("typo in config: exit %d: %s", code, errb.String())
	}
}
