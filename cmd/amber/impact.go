package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/amber-kafka/amber/impact"
)

const impactExamples = `  # The service was restored from its 14:00 backup after losing data at 14:15:
  # which consumer groups had processed what it produced in between?
  amber impact --archive s3://backups/kafka-prod --topic orders,payments \
    --since 2026-11-21T14:00:00Z --until 2026-11-21T14:15:00Z

  # The exact offset ranges one group consumed from the window.
  amber impact --archive amber-data --topic orders --since 2026-11-21T14:00 --until 2026-11-21T14:15 --group billing

  # A work list for automated compensation: one JSON record per group and partition range.
  amber impact --archive amber-data --topic orders --since 2h --until 1h45m \
    --emit-compensation orders-compensation --bootstrap kafka:9092

Work list records: key the group; value {"id","group","topic","partition",
"from_offset","to_offset" (exclusive),"records","window":{"since","until"},"source"}.`

// runImpact reports which consumer groups consumed the records a time
// window acknowledged, from the archived commit history.
func runImpact(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("impact", "--archive URL --topic T[,T...] --since TIME --until TIME [--group G] [--json] [--emit-compensation TOPIC --bootstrap HOST:PORT]", impactExamples, stdout)
	archiveURL := fs.String("archive", "", "the archive: s3://bucket/prefix, file:///dir, a path, or a proxy's data directory (its archive plus what its journal has not uploaded yet) (required)")
	var topics listFlag
	fs.Var(&topics, "topic", "topics whose window to analyse, comma-separated or repeated (required)")
	sinceStr := fs.String("since", "", "window start, by ack time, inclusive: RFC 3339, a date, 2006-01-02T15:04, or an age like 2h (required)")
	untilStr := fs.String("until", "", "window end, by ack time, inclusive (required)")
	group := fs.String("group", "", "report only this consumer group, with the exact offset ranges it consumed")
	asJSON := fs.Bool("json", false, "print the report as JSON")
	emitTopic := fs.String("emit-compensation", "", "write the work list to this topic: one record per affected group and partition range (needs --bootstrap)")
	var kf kafkaFlags
	kf.register(fs)
	fs.Lookup("bootstrap").Usage = "the cluster --emit-compensation writes to, HOST:PORT, comma-separated"
	keyFile := fs.String("encryption-key-file", "", "key of an encrypted archive")
	if err := parseFlags(fs, args); err != nil {
		return err
	}

	o := impact.Options{Topics: topics, Group: *group}
	var errs []error
	if *archiveURL == "" {
		errs = append(errs, usagef("--archive is required"))
	}
	now := time.Now()
	for _, tf := range []struct {
		name, s string
		dst     *time.Time
		// unset stands in for a time that does not parse, so that
		// Validate neither calls it missing nor compares it.
		unset time.Time
	}{{"--since", *sinceStr, &o.Since, time.Unix(0, 0)}, {"--until", *untilStr, &o.Until, time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC)}} {
		if tf.s == "" {
			continue // Validate says it is required
		}
		t, err := parseTime(tf.s, now)
		if err != nil {
			errs = append(errs, usagef("%s: %v", tf.name, err))
			t = tf.unset
		}
		*tf.dst = t
	}
	if err := o.Validate(); err != nil {
		for _, e := range unjoin(err) {
			if !errors.Is(e, impact.ErrNoArchive) { // checked above, opened below
				errs = append(errs, usageError{e})
			}
		}
	}
	switch {
	case *emitTopic != "" && len(kf.bootstrap) == 0:
		errs = append(errs, usagef("--emit-compensation needs --bootstrap: the cluster to write the work list to"))
	case *emitTopic == "" && len(kf.bootstrap) > 0:
		errs = append(errs, usagef("--bootstrap is used only with --emit-compensation TOPIC"))
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	key, err := loadKey(*keyFile)
	if err != nil {
		return err
	}
	a, j, err := openArchiveAndJournal(ctx, *archiveURL, key, "the batches and commits it has not uploaded yet (up to --flush-interval) are left out", stderr)
	if err != nil {
		return err
	}
	defer j.Close()
	o.Archive, o.Journal = a, j
	rep, err := impact.Analyze(ctx, o)
	if err != nil {
		return err
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(rep); err != nil {
			return err
		}
	} else {
		printImpact(stdout, rep)
	}
	if *emitTopic == "" {
		return nil
	}
	items := rep.WorkList()
	if len(items) == 0 {
		fmt.Fprintf(stderr, "no group consumed records of the window: nothing written to %s\n", *emitTopic)
		return nil
	}
	cl, err := kf.client()
	if err != nil {
		return err
	}
	defer cl.Close()
	if err := impact.Emit(ctx, cl, *emitTopic, items); err != nil {
		return err
	}
	fmt.Fprintf(stderr, "wrote %d work items to %s\n", len(items), *emitTopic)
	return nil
}

// unjoin splits an errors.Join error into its parts.
func unjoin(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	return []error{err}
}

func printImpact(w io.Writer, rep *impact.Report) {
	fmt.Fprintf(w, "Window: %s to %s (broker ack time, both inclusive)\n\n", fmtAck(rep.Window.Since), fmtAck(rep.Window.Until))
	if len(rep.Partitions) > 0 {
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "TOPIC\tPARTITION\tWINDOW OFFSETS\tRECORDS\tUNARCHIVED\tFIRST ACK\tLAST ACK")
		for _, p := range rep.Partitions {
			fmt.Fprintf(tw, "%s\t%d\t[%d,%d)\t%d\t%d\t%s\t%s\n", p.Topic, p.Partition, p.FromOffset, p.ToOffset, p.Records, p.Unarchived,
				fmtAck(p.FirstAckTime), fmtAck(p.LastAckTime))
		}
		tw.Flush()
		fmt.Fprintln(w)
	}
	switch {
	case rep.Group != "":
		for _, g := range rep.Groups {
			printGroupDetail(w, rep, g)
		}
	case len(rep.Groups) > 0:
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "GROUP\tAFFECTED\tCONSUMED\tENTERED WINDOW\tPASSED WINDOW\tSOURCE\tNOTE")
		affected := 0
		for _, g := range rep.Groups {
			yes := "no"
			switch g.Status {
			case impact.StatusAll:
				yes = "yes, all"
				affected++
			case impact.StatusPartial:
				yes = "yes, partly"
				affected++
			}
			fmt.Fprintf(tw, "%s\t%s\t%d of %d\t%s\t%s\t%s\t%s\n", g.Group, yes, g.Records, g.WindowRecords,
				fmtAckPtr(g.EnteredAt), fmtAckPtr(g.PassedAt), g.Source, groupNote(g))
		}
		tw.Flush()
		fmt.Fprintf(w, "\n%d of %d groups consumed records of the window. --group G lists the offset ranges one consumed; --json has everything.\n",
			affected, len(rep.Groups))
	}
	for i, n := range rep.Notes {
		if i > 0 || len(rep.Groups) > 0 {
			fmt.Fprintln(w)
		}
		fmt.Fprintln(w, wrap("note: "+n, 100))
	}
}

// wrap breaks s into lines of at most width columns, between words.
func wrap(s string, width int) string {
	var b strings.Builder
	col := 0
	for i, word := range strings.Fields(s) {
		if i > 0 {
			if col+1+len(word) > width {
				b.WriteByte('\n')
				col = 0
			} else {
				b.WriteByte(' ')
				col++
			}
		}
		b.WriteString(word)
		col += len(word)
	}
	return b.String()
}

func printGroupDetail(w io.Writer, rep *impact.Report, g impact.Group) {
	verdict := "not affected"
	if g.Affected {
		verdict = "affected"
	}
	fmt.Fprintf(w, "Group %s: %s, consumed %d of the window's %d records on the partitions it commits on (source: %s)\n\n",
		g.Group, verdict, g.Records, g.WindowRecords, g.Source)
	windows := map[impact.PartitionRef]impact.PartitionWindow{}
	for _, p := range rep.Partitions {
		windows[impact.PartitionRef{Topic: p.Topic, Partition: p.Partition}] = p
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "TOPIC\tPARTITION\tWINDOW\tCONSUMED\tRECORDS\tCOMMITTED\tENTERED WINDOW\tPASSED WINDOW\tNOTE")
	for _, p := range g.Partitions {
		win := windows[impact.PartitionRef{Topic: p.Topic, Partition: p.Partition}]
		consumed := "-"
		if p.Consumed != nil {
			consumed = fmt.Sprintf("[%d,%d)", p.Consumed.From, p.Consumed.To)
		}
		committed := "-"
		if p.Committed >= 0 {
			committed = fmt.Sprint(p.Committed)
		}
		var notes []string
		if p.Highest > p.Committed {
			notes = append(notes, fmt.Sprintf("rewound from %d", p.Highest))
		}
		if p.Source == impact.SourceSnapshots {
			notes = append(notes, "from snapshots: times are upper bounds")
		}
		notes = append(notes, txnNotes(p.AbortedTxnCommits, p.PendingTxnCommits)...)
		fmt.Fprintf(tw, "%s\t%d\t[%d,%d)\t%s\t%d\t%s\t%s\t%s\t%s\n", p.Topic, p.Partition, win.FromOffset, win.ToOffset, consumed, p.Records,
			committed, fmtAckPtr(p.EnteredAt), fmtAckPtr(p.PassedAt), strings.Join(notes, "; "))
	}
	for _, p := range g.NoHistory {
		win := windows[p]
		fmt.Fprintf(tw, "%s\t%d\t[%d,%d)\t?\t?\t?\t-\t-\tno commit or snapshot of this group: unknown\n", p.Topic, p.Partition, win.FromOffset, win.ToOffset)
	}
	tw.Flush()
}

func groupNote(g impact.Group) string {
	notes := txnNotes(g.AbortedTxnCommits, g.PendingTxnCommits)
	if n := len(g.NoHistory); n > 0 {
		notes = append(notes, fmt.Sprintf("no history on %d partitions", n))
	}
	return strings.Join(notes, "; ")
}

func txnNotes(aborted, pending int) []string {
	var out []string
	if aborted > 0 {
		out = append(out, fmt.Sprintf("%d aborted transactional commits ignored", aborted))
	}
	if pending > 0 {
		out = append(out, fmt.Sprintf("%d transactional commits without outcome ignored", pending))
	}
	return out
}

func fmtAck(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000Z07:00") }

func fmtAckPtr(t *time.Time) string {
	if t == nil {
		return "-"
	}
	return fmtAck(*t)
}
