package main

import (
	"bufio"
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/amber-kafka/amber/archive"
	"github.com/amber-kafka/amber/archive/export"
)

const exportExamples = `  # Everything, onto a USB disk; run again later to add only what is new.
  amber export --archive s3://backups/kafka-prod --out /mnt/usb/kafka

  # One topic's last week, signed; the public key goes to whoever checks it.
  amber export --gen-key export.key            # writes export.key and export.key.pub, once
  amber export --archive s3://backups/kafka-prod --out /mnt/usb/orders \
    --topic orders --since 168h --sign-key export.key

  # One tar file instead of a directory (a complete export each time). verify,
  # import, ls and restore read it as it is.
  amber export --archive amber-data --tar /mnt/usb/kafka-2026-11-21.tar

On the far side, with no network:
  amber verify  --archive /mnt/usb/kafka --public-key export.key.pub
  amber ls      --archive /mnt/usb/kafka
  amber restore --archive /mnt/usb/kafka --bootstrap kafka:9092 --topic orders
  amber import  --from /mnt/usb/kafka --archive s3://dr-backups/kafka-prod`

// runExport copies an archive, or the part of it asked for, into an
// export directory or tar file that verifies and restores offline.
func runExport(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("export", "--archive URL (--out DIR | --tar FILE) [--topic T,...] [--since TIME] [--until TIME] [--sign-key FILE]", exportExamples, stdout)
	archiveURL := fs.String("archive", "", "the archive to export: s3://bucket/prefix, file:///dir, a path, or a proxy's data directory (its archive) (required)")
	out := fs.String("out", "", "the export directory, created if needed; exporting into it again adds only what is new")
	tarFile := fs.String("tar", "", "write the export as one new tar file instead (- for stdout)")
	var topics listFlag
	fs.Var(&topics, "topic", "export only these topics, comma-separated or repeated (default: all)")
	sinceStr := fs.String("since", "", "export only batches acknowledged at or after this time (RFC 3339, a date, or an age like 24h); earlier events are kept")
	untilStr := fs.String("until", "", "export only batches and events up to this time (transaction outcomes are kept)")
	signKey := fs.String("sign-key", "", "sign the manifest with this ed25519 private key (PEM PKCS#8, or 64 raw bytes)")
	genKey := fs.String("gen-key", "", "write a new signing key to FILE and its public key to FILE.pub, and do nothing else")
	keyFile := fs.String("encryption-key-file", "", "key of an encrypted archive: needed with --topic/--since/--until, and to check what is copied (the export stays encrypted)")
	concurrency := fs.Int("concurrency", export.DefaultConcurrency, "uploads copied at once")
	asJSON := fs.Bool("json", false, "print the report as JSON")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *genKey != "" {
		if *archiveURL != "" || *out != "" || *tarFile != "" {
			return usagef("--gen-key only writes a key: run the export separately")
		}
		pub, err := export.GenerateKey(*genKey)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "wrote %s (private: keep it where exports are made) and %s.pub (give it to whoever verifies); key id %s\n", *genKey, *genKey, export.KeyID(pub))
		return nil
	}

	var errs []error
	if *archiveURL == "" {
		errs = append(errs, usagef("--archive is required"))
	}
	if (*out == "") == (*tarFile == "") {
		errs = append(errs, usagef("give exactly one of --out DIR and --tar FILE"))
	}
	if *concurrency < 1 {
		errs = append(errs, usagef("--concurrency %d: want at least 1", *concurrency))
	}
	sel := archive.Selection{Topics: topics}
	now := time.Now()
	for _, tf := range []struct {
		name, s string
		dst     *time.Time
	}{{"--since", *sinceStr, &sel.Since}, {"--until", *untilStr, &sel.Until}} {
		if tf.s != "" {
			t, err := parseTime(tf.s, now)
			if err != nil {
				errs = append(errs, usagef("%s: %v", tf.name, err))
			}
			*tf.dst = t
		}
	}
	if !sel.Since.IsZero() && !sel.Until.IsZero() && sel.Since.After(sel.Until) {
		errs = append(errs, usagef("--since %s is after --until %s", sel.Since.Format(time.RFC3339), sel.Until.Format(time.RFC3339)))
	}
	if *out != "" && *archiveURL != "" && samePath(*out, *archiveURL) {
		errs = append(errs, usagef("--out is the archive itself: export into another directory"))
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	key, err := loadKey(*keyFile)
	if err != nil {
		return err
	}
	var priv ed25519.PrivateKey
	if *signKey != "" {
		if priv, err = export.LoadPrivateKey(*signKey); err != nil {
			return err
		}
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	store, j, err := openSource(ctx, *archiveURL, "what it has not uploaded yet is not exported", stderr)
	if err != nil {
		return err
	}
	if j != nil {
		if n := j.BacklogBytes(); n > 0 {
			fmt.Fprintf(stderr, "note: the proxy's journal holds %s not uploaded yet; only the archive is exported\n", humanBytes(n))
		}
		j.Close()
	}
	o := export.Options{Source: store, SourceName: *archiveURL, Key: key, Selection: sel, Dir: *out, SignKey: priv, Concurrency: *concurrency}
	report := stdout
	var finishTar func(ok bool) error
	if *tarFile != "" {
		w, finish, err := createTar(*tarFile)
		if err != nil {
			return err
		}
		if *tarFile == "-" {
			report = stderr // stdout is the tar stream
		}
		o.Tar, finishTar = w, finish
	}
	bar := &lazyBar{w: stderr, label: "export", bytes: true}
	o.Progress = bar.set
	rep, err := export.Run(ctx, o)
	bar.done()
	if finishTar != nil {
		if ferr := finishTar(err == nil); err == nil {
			err = ferr
		}
	}
	if err != nil {
		if errors.Is(err, context.Canceled) {
			return fmt.Errorf("interrupted: nothing was listed in a manifest; run the same command again (files already written are reused)")
		}
		return err
	}
	if *asJSON {
		if err := writeJSON(report, rep); err != nil {
			return err
		}
	} else {
		printExportReport(report, rep, *out)
	}
	if len(rep.Damaged) > 0 {
		return fmt.Errorf("%d uploads of %s are damaged and were not exported (listed above); everything else was", len(rep.Damaged), *archiveURL)
	}
	return nil
}

func printExportReport(w io.Writer, rep *export.Report, dir string) {
	if rep.Manifest == "" && len(rep.Damaged) == 0 && len(rep.Leftovers) == 0 {
		fmt.Fprintf(w, "nothing new: %s is up to date (%d uploads already there, %d not selected)\n", rep.Target, rep.Present, rep.NotSelected)
		return
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "COPIED\tDERIVED\tALREADY THERE\tNOT SELECTED\tFILES\tWRITTEN\tBATCHES\tRECORDS\tEVENTS\tREAD\tTOOK\tRATE")
	rate := "-"
	if s := rep.Duration.Seconds(); s > 0 {
		rate = humanBytes(int64(float64(rep.SourceBytes)/s)) + "/s"
	}
	fmt.Fprintf(tw, "%d\t%d\t%d\t%d\t%d\t%s\t%d\t%d\t%d\t%s\t%s\t%s\n", rep.Copied, rep.Derived, rep.Present, rep.NotSelected, rep.Files,
		humanBytes(rep.Bytes), rep.Batches, rep.Records, rep.Events, humanBytes(rep.SourceBytes), rep.Duration.Round(time.Millisecond), rate)
	tw.Flush()
	for _, d := range rep.Damaged {
		fmt.Fprintf(w, "not exported: %s\n", d)
	}
	for _, m := range rep.Resigned {
		fmt.Fprintf(w, "wrote the missing signature of %s\n", m)
	}
	if rep.Adopted > 0 {
		fmt.Fprintf(w, "%d files an interrupted run had written were found intact and listed\n", rep.Adopted)
	}
	if len(rep.Leftovers) > 0 {
		fmt.Fprintf(w, "%d files in the export are in no manifest (left by an interrupted run, or put there by hand); verify reports them until they are deleted:\n", len(rep.Leftovers))
		for _, l := range rep.Leftovers {
			fmt.Fprintf(w, "  %s\n", l)
		}
	}
	if rep.Unchecked > 0 {
		fmt.Fprintf(w, "%d encrypted uploads were copied without their key, as they are: verify with --encryption-key-file checks their contents\n", rep.Unchecked)
	}
	switch {
	case rep.Manifest == "":
		fmt.Fprintf(w, "nothing new: %s is up to date\n", rep.Target)
	default:
		signed := "unsigned"
		if rep.SignedBy != "" {
			signed = "signed with key " + rep.SignedBy
		}
		fmt.Fprintf(w, "export run %d into %s: %d files listed in %s, %s\n", rep.Run, rep.Target, rep.Files, rep.Manifest, signed)
		if dir != "" {
			fmt.Fprintf(w, "check it offline with: amber verify --archive %s\n", dir)
		}
	}
}

// createTar opens a new tar file (or stdout for "-"). finish flushes and
// syncs it, or removes it if the export failed.
func createTar(path string) (io.Writer, func(ok bool) error, error) {
	if path == "-" {
		bw := bufio.NewWriterSize(os.Stdout, 1<<20)
		return bw, func(bool) error { return bw.Flush() }, nil
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if errors.Is(err, os.ErrExist) {
		return nil, nil, fmt.Errorf("%s exists: a tar export is written whole, never added to; choose a new name (or use --out DIR to add to an export)", path)
	}
	if err != nil {
		return nil, nil, err
	}
	bw := bufio.NewWriterSize(f, 1<<20)
	return bw, func(ok bool) error {
		err := bw.Flush()
		if err == nil {
			err = f.Sync()
		}
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if !ok || err != nil {
			os.Remove(path)
		}
		return err
	}, nil
}

// samePath reports whether a directory and an --archive argument name the
// same place.
func samePath(dir, url string) bool {
	if strings.Contains(url, "://") && !strings.HasPrefix(url, "file://") {
		return false
	}
	a, err1 := filepath.Abs(dir)
	b, err2 := filepath.Abs(strings.TrimPrefix(url, "file://"))
	return err1 == nil && err2 == nil && a == b
}
