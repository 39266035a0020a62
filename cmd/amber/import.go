package main

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/amber-kafka/amber/archive/export"
)

const importExamples = `  # The far side of an air gap: check the export, then upload it into the DR bucket.
  amber verify --archive /mnt/usb/kafka --public-key export.key.pub
  AWS_ENDPOINT_URL=http://minio-dr:9000 amber import --from /mnt/usb/kafka \
    --archive s3://dr-backups/kafka-prod --public-key export.key.pub

  # From a tar export, without extracting it.
  amber import --from /mnt/usb/kafka-2026-11-21.tar --archive file:///srv/amber/archive`

// runImport uploads an export's archive objects into another store.
func runImport(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("import", "--from DIR|FILE.tar --archive URL [--public-key FILE]", importExamples, stdout)
	from := fs.String("from", "", "the export: a directory amber export wrote, or its --tar file (required)")
	archiveURL := fs.String("archive", "", "the archive to import into: s3://bucket/prefix, file:///dir or a path (required)")
	publicKey := fs.String("public-key", "", "import only if every manifest is signed by this ed25519 public key")
	concurrency := fs.Int("concurrency", export.DefaultConcurrency, "files uploaded at once")
	asJSON := fs.Bool("json", false, "print the report as JSON")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *from == "" || *archiveURL == "" {
		return usagef("--from and --archive are required")
	}
	if *concurrency < 1 {
		return usagef("--concurrency %d: want at least 1", *concurrency)
	}
	if samePath(*from, *archiveURL) {
		return usagef("--archive is the export itself: import into another archive")
	}
	var pub ed25519.PublicKey
	if *publicKey != "" {
		var err error
		if pub, err = export.LoadPublicKey(*publicKey); err != nil {
			return err
		}
	}
	src, closeFn, ok, err := openExport(*from)
	if err != nil {
		return err
	}
	if !ok {
		return fmt.Errorf("no export at %s: give a directory amber export wrote (it holds manifest/) or its --tar file", *from)
	}
	defer closeFn()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	dst, err := openStore(ctx, *archiveURL)
	if err != nil {
		return err
	}
	bar := &lazyBar{w: stderr, label: "import", bytes: true}
	rep, err := export.Import(ctx, export.ImportOptions{From: src, To: dst, PublicKey: pub, Concurrency: *concurrency, Progress: bar.set})
	bar.done()
	if err != nil {
		if errors.Is(err, export.ErrExportInvalid) {
			return fmt.Errorf("%w\nrun amber verify --archive %s for the details", err, *from)
		}
		if errors.Is(err, context.Canceled) {
			return fmt.Errorf("interrupted: run the same command again; what is already uploaded is skipped")
		}
		return fmt.Errorf("%w\nrun the same command again once fixed; what is already uploaded is skipped", err)
	}
	if *asJSON {
		return writeJSON(stdout, rep)
	}
	rate := "-"
	if s := rep.Duration.Seconds(); s > 0 {
		rate = humanBytes(int64(float64(rep.Bytes)/s)) + "/s"
	}
	fmt.Fprintf(stdout, "imported %s into %s: %d of %d files uploaded (%s), %d already there; %d manifests checked in %s, %s\n",
		src, dst, rep.Uploaded, rep.Files, humanBytes(rep.Bytes), rep.Present, rep.Manifests, rep.Duration.Round(time.Millisecond), rate)
	fmt.Fprintf(stdout, "every file matched its manifest's SHA-256 before it was sent; amber verify --archive %s checks the archive there\n", *archiveURL)
	return nil
}
