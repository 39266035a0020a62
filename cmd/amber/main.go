// Command amber is the one Amber binary: a Kafka proxy that keeps a perfect
// copy of everything produced through it, and the tools around that copy.
//
// Each subcommand lives in a file of its own; main only dispatches. Exit
// codes: 0 ok, 1 failure, 2 bad usage.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
)

// command is one subcommand.
type command struct {
	summary string
	run     func(args []string, stdout, stderr io.Writer) error
}

var commands = map[string]command{
	"proxy":    {"run the Kafka proxy in front of a cluster", runProxy},
	"demo":     {"run an embedded cluster, the proxy and sample traffic", runDemo},
	"ls":       {"list what an archive holds: partitions, offsets, times, holes", runLs},
	"prune":    {"delete uploads acknowledged before a time (the only deletion)", runPrune},
	"restore":  {"replay archived topics into a cluster, up to a point in time", runRestore},
	"backfill": {"fetch the holes of an archive from the cluster; record what it no longer has", runBackfill},
	"verify":   {"check an archive's integrity, or with --against that it equals the cluster", runVerify},
	"export":   {"copy an archive, or part of it, to removable media: verifiable and restorable offline", runExport},
	"import":   {"upload an export into another object store (the far side of an air gap)", runImport},
	"impact":   {"which consumer groups processed the records of a time window", runImpact},
	"history":  {"what the archive recorded besides records: who changed which topic when, commits, transactions, losses", runHistory},
}

// usageError is bad usage: exit code 2.
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

func usagef(format string, args ...any) error { return usageError{fmt.Errorf(format, args...)} }

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "help" || args[0] == "-h" || args[0] == "--help" {
		printUsage(stdout)
		return 0
	}
	cmd, ok := commands[args[0]]
	if !ok {
		fmt.Fprintf(stderr, "amber: unknown command %q\n\n", args[0])
		printUsage(stderr)
		return 2
	}
	err := cmd.run(args[1:], stdout, stderr)
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
		return 0
	case errors.As(err, new(usageError)):
		fmt.Fprintf(stderr, "amber %s: %v\nRun 'amber %s --help' for usage.\n", args[0], err, args[0])
		return 2
	default:
		fmt.Fprintf(stderr, "amber %s: %v\n", args[0], err)
		return 1
	}
}

func printUsage(w io.Writer) {
	fmt.Fprintln(w, "Amber: a Kafka proxy that keeps a perfect copy of everything produced through it.")
	fmt.Fprintln(w, "\nUsage: amber COMMAND [flags]\n\nCommands:")
	names := make([]string, 0, len(commands))
	for n := range commands {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "  %-9s %s\n", n, commands[n].summary)
	}
	fmt.Fprintln(w, "\nRun 'amber COMMAND --help' for a command's flags and examples.")
}

// newFlagSet returns a flag set that reports errors instead of exiting and
// prints usage with examples on --help.
func newFlagSet(name, synopsis, examples string, stdout io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("amber "+name, flag.ContinueOnError)
	fs.SetOutput(stdout)
	fs.Usage = func() {
		fmt.Fprintf(stdout, "Usage: amber %s %s\n\nFlags:\n", name, synopsis)
		fs.SetOutput(stdout)
		fs.PrintDefaults()
		if examples != "" {
			fmt.Fprintf(stdout, "\nExamples:\n%s\n", strings.TrimRight(examples, "\n"))
		}
	}
	return fs
}

// parseFlags parses args, turning flag errors into usage errors.
func parseFlags(fs *flag.FlagSet, args []string) error {
	fs.SetOutput(io.Discard)
	err := fs.Parse(args)
	if errors.Is(err, flag.ErrHelp) {
		return err // the flag package has printed fs.Usage
	}
	if err != nil {
		return usageError{err}
	}
	if fs.NArg() > 0 {
		return usagef("unexpected argument %q", fs.Arg(0))
	}
	return nil
}

// listFlag is a repeatable, comma-separated flag.
type listFlag []string

func (l *listFlag) String() string { return strings.Join(*l, ",") }
func (l *listFlag) Set(s string) error {
	for _, v := range strings.Split(s, ",") {
		if v = strings.TrimSpace(v); v != "" {
			*l = append(*l, v)
		}
	}
	return nil
}
