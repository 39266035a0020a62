package main

import (
	"context"
	"crypto/ed25519"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/amber-kafka/amber/archive"
	"github.com/amber-kafka/amber/archive/export"
	"github.com/amber-kafka/amber/archive/file"
	"github.com/amber-kafka/amber/archive/tarfile"
)

// openExport opens an --archive or --from argument that is an export: a
// directory holding manifest/, or a tar file (read in place). ok is false
// for anything else, which is then no error.
func openExport(url string) (store archive.Store, closeFn func(), ok bool, err error) {
	if strings.Contains(url, "://") && !strings.HasPrefix(url, "file://") {
		return nil, nil, false, nil
	}
	path := strings.TrimPrefix(url, "file://")
	fi, err := os.Stat(path)
	if err != nil {
		return nil, nil, false, nil
	}
	if fi.Mode().IsRegular() {
		ts, err := tarfile.Open(path)
		if err != nil {
			return nil, nil, true, fmt.Errorf("%w (an export tar is what amber export --tar writes)", err)
		}
		return ts, func() { ts.Close() }, true, nil
	}
	if mi, err := os.Stat(filepath.Join(path, strings.TrimSuffix(export.ManifestDir, "/"))); err != nil || !mi.IsDir() {
		return nil, nil, false, nil
	}
	fst, err := file.New(path)
	if err != nil {
		return nil, nil, true, err
	}
	return fst, func() {}, true, nil
}

// verifyIfExport runs the export check when url is an export; done is
// false (and nothing happens) when it is not.
func verifyIfExport(ctx context.Context, url string, key *archive.Key, publicKey string, concurrency int, asJSON bool, stdout, stderr io.Writer) (done bool, err error) {
	store, closeFn, ok, err := openExport(url)
	if !ok || err != nil {
		return ok, err
	}
	defer closeFn()
	var pub ed25519.PublicKey
	if publicKey != "" {
		if pub, err = export.LoadPublicKey(publicKey); err != nil {
			return true, err
		}
	}
	bar := &lazyBar{w: stderr, label: "verify", bytes: true}
	rep, err := export.Verify(ctx, store, export.VerifyOptions{PublicKey: pub, Key: key, Concurrency: concurrency, Progress: bar.set})
	bar.done()
	if err != nil {
		return true, err
	}
	if asJSON {
		if err := writeJSON(stdout, struct {
			*export.VerifyReport
			OK bool `json:"ok"`
		}{rep, rep.OK()}); err != nil {
			return true, err
		}
	} else {
		printExportVerify(stdout, store, rep, pub)
	}
	if !rep.OK() {
		n := 0
		for _, p := range rep.Problems {
			if !p.Warning {
				n++
			}
		}
		return true, fmt.Errorf("%d problems in the export %s (listed above): do not restore from it; export again from the source if you can", n, store)
	}
	return true, nil
}

func printExportVerify(w io.Writer, store archive.Store, rep *export.VerifyReport, pub ed25519.PublicKey) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "MANIFESTS\tSIGNED\tFILES\tINDEXES\tSEGMENTS\tBATCHES\tRECORDS\tEVENTS\tREAD\tTOOK")
	ir := rep.Integrity
	if ir == nil {
		ir = &archive.IntegrityReport{}
	}
	fmt.Fprintf(tw, "%d\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%s\t%s\n", rep.Manifests, rep.Signed, rep.Files, ir.Indexes, ir.Segments, ir.Batches, ir.Records, ir.Events,
		humanBytes(rep.Bytes), rep.Duration.Round(time.Millisecond))
	tw.Flush()
	for _, p := range rep.Problems {
		fmt.Fprintln(w, p.String())
	}
	if rep.IntegrityNote != "" {
		fmt.Fprintln(w, "note: "+rep.IntegrityNote)
	}
	if !rep.OK() {
		return
	}
	fmt.Fprintf(w, "%s: every file is the one its manifest lists, and nothing else is there", store)
	if rep.Integrity != nil {
		fmt.Fprint(w, "; every object, block and batch checks out")
	}
	fmt.Fprintln(w, ".")
	switch {
	case pub != nil:
		fmt.Fprintf(w, "every run is signed by key %s (the --public-key given).\n", export.KeyID(pub))
	case len(rep.SignedBy) > 0:
		fmt.Fprintf(w, "signatures by key %s match their manifests; give --public-key to prove whose key that is.\n", strings.Join(rep.SignedBy, ", "))
	}
}
