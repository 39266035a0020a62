// Package runner holds what the benchmark runners under bench/ share, so
// that each keeps only what it measures.
//
// Command is the command line of their front ends in bench/cmd: the
// flags every one has (-json, -q, -check, -cpuprofile), the usage text,
// messages and exit codes. A front end registers its own flags, calls
// Parse, builds its Options and hands Run a function that measures:
//
//	var o restorebench.Options
//	flag.IntVar(&o.Rounds, "rounds", restorebench.DefaultRounds, "runs of each mode per shape")
//	c := &runner.Command{Name: "amber-restore-bench", Summary: "...", ProgressPer: "run", Check: "..."}
//	if !c.Parse(flag.CommandLine, os.Args[1:]) {
//		return 2
//	}
//	o.Progress = c.Progress()
//	if err := o.EnsureDefaults().Validate(); err != nil {
//		return c.BadUsage(err)
//	}
//	return c.Run(func(ctx context.Context) (runner.Report, error) { return restorebench.Run(ctx, o) })
package runner
