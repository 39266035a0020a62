package runner

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"testing"
)

type fakeReport struct{ passed bool }

func (r fakeReport) WriteTable(w io.Writer) error { _, err := io.WriteString(w, "table\n"); return err }
func (r fakeReport) WriteJSON(w io.Writer) error  { _, err := io.WriteString(w, "{}\n"); return err }
func (r fakeReport) Passed() bool                 { return r.passed }

// TestCommand runs a Command through its flags, its report's outcomes and
// a failing benchmark, and checks exit code, stdout and stderr.
func TestCommand(t *testing.T) {
	for _, tc := range []struct {
		name     string
		args     []string
		rep      fakeReport
		err      error
		code     int
		stdout   string
		stderr   string
		progress bool
	}{
		{name: "table", rep: fakeReport{passed: true}, stdout: "table\n", progress: true},
		{name: "json quiet", args: []string{"-json", "-q"}, rep: fakeReport{passed: true}, stdout: "{}\n"},
		{name: "missed without -check", rep: fakeReport{}, stdout: "table\n", progress: true},
		{name: "missed with -check", args: []string{"-check"}, rep: fakeReport{}, code: 1, stdout: "table\n",
			stderr: "x-bench: a target was missed\n", progress: true},
		{name: "failed", err: errors.New("boom"), code: 1, stderr: "x-bench: boom\n", progress: true},
		{name: "interrupted", err: fmt.Errorf("shape 1m/none: %w", context.Canceled), code: 1,
			stderr: "x-bench: interrupted\n", progress: true},
		{name: "arguments", args: []string{"extra"}, code: 2, stderr: "x-bench: unexpected arguments [\"extra\"]\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			c := &Command{Name: "x-bench", Summary: "Measures x.", ProgressPer: "run", Check: "a target is missed",
				Missed: "a target was missed", Stdout: &stdout, Stderr: &stderr}
			fs := flag.NewFlagSet("x-bench", flag.ContinueOnError)
			code := 2
			if c.Parse(fs, tc.args) {
				if got := c.Progress() != nil; got != tc.progress {
					t.Errorf("progress writer set: %v, want %v", got, tc.progress)
				}
				code = c.Run(func(context.Context) (Report, error) {
					if tc.err != nil {
						return nil, tc.err
					}
					return tc.rep, nil
				})
			}
			if code != tc.code || stdout.String() != tc.stdout || stderr.String() != tc.stderr {
				t.Errorf("exit %d, stdout %q, stderr %q; want %d, %q, %q", code, stdout.String(), stderr.String(), tc.code, tc.stdout, tc.stderr)
			}
		})
	}
}

// TestCommandUsage checks the help text: the usage line, the summary and
// the shared flags' help built from the Command's fields.
func TestCommandUsage(t *testing.T) {
	var out bytes.Buffer
	c := &Command{Name: "x-bench", Summary: "Measures x.", ProfileLabels: "goroutines carry bench=X", ProgressPer: "round",
		Check: "x is too slow", Stderr: io.Discard}
	fs := flag.NewFlagSet("x-bench", flag.ContinueOnError)
	fs.SetOutput(&out)
	if c.Parse(fs, []string{"-h"}) {
		t.Fatal("Parse -h: true")
	}
	for _, want := range []string{
		"usage: x-bench [flags]\n\nMeasures x.\n\n",
		"write a CPU profile of the whole run to file; goroutines carry bench=X",
		"do not print a progress line per round on stderr",
		"exit 1 if x is too slow",
		"print the report as JSON instead of a table",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("usage lacks %q:\n%s", want, out.String())
		}
	}
}
