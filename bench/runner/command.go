package runner

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/pprof"
	"syscall"

	"go.uber.org/zap"
)

// Report is what a benchmark returns and Command prints.
type Report interface {
	// WriteTable writes the report for people.
	WriteTable(w io.Writer) error
	// WriteJSON writes the report as JSON.
	WriteJSON(w io.Writer) error
	// Passed reports whether every target was met; -check turns false
	// into exit code 1.
	Passed() bool
}

// Command is the command line every benchmark front end in bench/cmd
// shares: -json, -q, -check and -cpuprofile, the usage text, messages on
// stderr prefixed with the command's name, and the exit codes (0 ok, 1
// failure or missed target with -check, 2 bad usage). The package doc
// shows a front end using it.
type Command struct {
	// Name is the command's name, in the usage line and before every
	// message on stderr.
	Name string
	// Summary is what -h says the command does, under the usage line.
	Summary string
	// ProfileLabels, if set, says which pprof labels the profiled
	// goroutines carry; -cpuprofile's help ends with it.
	ProfileLabels string
	// ProgressPer is what a progress line on stderr is printed per ("run",
	// "round"), for -q's help.
	ProgressPer string
	// Check ends -check's help, "exit 1 if ...".
	Check string
	// Missed, if set, is printed on stderr when -check finds a target
	// missed.
	Missed string

	// Stdout and Stderr default to os.Stdout and os.Stderr.
	Stdout, Stderr io.Writer

	json, quiet, check bool
	cpuprofile         string
}

// Parse registers the shared flags on fs next to the front end's own,
// sets fs's usage text and parses args. It returns false, having said why
// on stderr, if there are arguments left over: the front end then exits 2.
// fs's error handling decides what a bad flag does (flag.CommandLine's
// exits 2).
func (c *Command) Parse(fs *flag.FlagSet, args []string) bool {
	if c.Stdout == nil {
		c.Stdout = os.Stdout
	}
	if c.Stderr == nil {
		c.Stderr = os.Stderr
	}
	profile := "write a CPU profile of the whole run to `file`"
	if c.ProfileLabels != "" {
		profile += "; " + c.ProfileLabels
	}
	fs.BoolVar(&c.json, "json", false, "print the report as JSON instead of a table")
	fs.StringVar(&c.cpuprofile, "cpuprofile", "", profile)
	fs.BoolVar(&c.quiet, "q", false, "do not print a progress line per "+c.ProgressPer+" on stderr")
	fs.BoolVar(&c.check, "check", false, "exit 1 if "+c.Check)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "usage: %s [flags]\n\n%s\n\n", c.Name, c.Summary)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return false // fs has said why
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(c.Stderr, "%s: unexpected arguments %q\n", c.Name, fs.Args())
		return false
	}
	return true
}

// Progress is where the benchmark prints its progress lines: stderr, or
// nil with -q.
func (c *Command) Progress() io.Writer {
	if c.quiet {
		return nil
	}
	return c.Stderr
}

// Logger is the logger a front end hands the code it measures:
// development format on stderr, warnings and above.
func Logger() (*zap.Logger, error) {
	return zap.NewDevelopment(zap.IncreaseLevel(zap.WarnLevel))
}

// BadUsage prints err and returns exit code 2.
func (c *Command) BadUsage(err error) int {
	fmt.Fprintf(c.Stderr, "%s: %v\n", c.Name, err)
	return 2
}

// Fail prints err and returns exit code 1.
func (c *Command) Fail(err error) int {
	fmt.Fprintf(c.Stderr, "%s: %v\n", c.Name, err)
	return 1
}

// Run runs bench under a context that SIGINT and SIGTERM cancel, profiled
// if -cpuprofile is given, prints its report on stdout as a table or with
// -json as JSON, and returns the exit code.
func (c *Command) Run(bench func(context.Context) (Report, error)) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if c.cpuprofile != "" {
		f, err := os.Create(c.cpuprofile)
		if err != nil {
			return c.Fail(err)
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return c.Fail(fmt.Errorf("start CPU profile: %w", err))
		}
		defer pprof.StopCPUProfile()
	}

	rep, err := bench(ctx)
	if err != nil {
		if errors.Is(err, context.Canceled) {
			return c.Fail(errors.New("interrupted"))
		}
		return c.Fail(err)
	}
	if c.json {
		err = rep.WriteJSON(c.Stdout)
	} else {
		err = rep.WriteTable(c.Stdout)
	}
	if err != nil {
		return c.Fail(err)
	}
	if c.check && !rep.Passed() {
		if c.Missed != "" {
			fmt.Fprintf(c.Stderr, "%s: %s\n", c.Name, c.Missed)
		}
		return 1
	}
	return 0
}
