package export

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/amber-kafka/amber/archive"
)

// ImportOptions configures Import.
type ImportOptions struct {
	// From is the export (a directory store, or a tar: archive/tarfile).
	// Required.
	From archive.Store
	// To is the archive to put it in. Required.
	To archive.Store
	// PublicKey, if set, must have signed every manifest of the export.
	PublicKey ed25519.PublicKey
	// Concurrency: files uploaded at once. Default DefaultConcurrency.
	Concurrency int
	// Progress, if set, is called with the bytes read from the export so
	// far and the total.
	Progress func(done, total int64)
}

// ImportReport is what Import did.
type ImportReport struct {
	Manifests int           `json:"manifests"`
	Files     int           `json:"files"`    // listed
	Uploaded  int           `json:"uploaded"` // put into the target
	Present   int           `json:"present"`  // already there with the same bytes
	Bytes     int64         `json:"bytes"`    // uploaded
	Duration  time.Duration `json:"duration_ns"`
}

// ErrExportInvalid is returned by Import for an export that fails its
// manifest check.
var ErrExportInvalid = errors.New("export fails its check")

// Import puts the archive objects of an export into another store: every
// file the manifests list, each checked against its listed SHA-256 before
// it is sent, every segment before any index (so the target never lists
// an index whose segment is not there yet). A file the target already
// holds with the same bytes is skipped, so an interrupted import is run
// again; one with other bytes is an error. The manifests stay behind:
// the target is an ordinary archive.
func Import(ctx context.Context, opts ImportOptions) (*ImportReport, error) {
	if opts.Concurrency == 0 {
		opts.Concurrency = DefaultConcurrency
	}
	var errs []error
	if opts.From == nil || opts.To == nil {
		errs = append(errs, errors.New("import: want an export and a target archive"))
	}
	if opts.Concurrency < 1 {
		errs = append(errs, fmt.Errorf("import: concurrency %d: want at least 1", opts.Concurrency))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	start := time.Now()
	c, err := readChain(ctx, opts.From)
	if err != nil {
		return nil, err
	}
	problems := append([]archive.Problem{}, c.problems...)
	if len(c.manifests) == 0 {
		problems = append(problems, archive.Problem{Object: ManifestDir, Block: -1, Message: "no manifest: not an export"})
	}
	for _, k := range c.extra {
		problems = append(problems, archive.Problem{Object: k, Block: -1, Message: "extra file: listed by no manifest"})
	}
	for _, l := range c.unsigned {
		problems = append(problems, archive.Problem{Object: sigPath(l.path), Block: -1, Message: "missing signature"})
	}
	if opts.PublicKey != nil {
		want := KeyID(opts.PublicKey)
		for _, l := range c.manifests {
			if l.m.Signature == nil || l.m.Signature.KeyID != want {
				problems = append(problems, archive.Problem{Object: l.path, Block: -1, Message: fmt.Sprintf("not signed by the --public-key given (key %s)", want)})
			}
		}
	}
	if len(problems) > 0 {
		var lines []string
		for _, p := range problems {
			lines = append(lines, "  "+p.String())
		}
		return nil, fmt.Errorf("%w; nothing was imported:\n%s", ErrExportInvalid, strings.Join(lines, "\n"))
	}

	rep := &ImportReport{Manifests: len(c.manifests), Files: len(c.listed)}
	var segs, idxs, others []listing
	var total int64
	for _, l := range c.listed {
		total += l.Size
		switch {
		case strings.HasPrefix(l.Path, "v1/seg/"):
			segs = append(segs, l)
		case strings.HasPrefix(l.Path, "v1/idx/"):
			idxs = append(idxs, l)
		default:
			others = append(others, l)
		}
	}
	var (
		read atomic.Int64
		mu   sync.Mutex // guards rep
	)
	one := func(ctx context.Context, l listing) error {
		b, err := readAll(ctx, opts.From, l.Path)
		if err != nil {
			return err
		}
		if d := read.Add(int64(len(b))); opts.Progress != nil {
			opts.Progress(d, total)
		}
		if int64(len(b)) != l.Size || hexSum(b) != l.SHA256 {
			return fmt.Errorf("%w: %s does not match %s (changed while importing?); nothing after it was imported", ErrExportInvalid, l.Path, l.manifest)
		}
		err = opts.To.Put(ctx, l.Path, bytes.NewReader(b), int64(len(b)))
		present := false
		if errors.Is(err, archive.ErrExists) {
			have, gerr := readAll(ctx, opts.To, l.Path)
			if gerr != nil {
				return gerr
			}
			if !bytes.Equal(have, b) {
				return fmt.Errorf("%s exists in %s with other bytes than the export's: objects are never replaced; import into another prefix", l.Path, opts.To)
			}
			present, err = true, nil
		}
		if err != nil {
			return fmt.Errorf("upload %s: %w", l.Path, err)
		}
		mu.Lock()
		defer mu.Unlock()
		if present {
			rep.Present++
		} else {
			rep.Uploaded++
			rep.Bytes += int64(len(b))
		}
		return nil
	}
	for _, group := range [][]listing{segs, others, idxs} {
		sort.Slice(group, func(i, j int) bool { return group[i].Path < group[j].Path })
		if err := parallel(ctx, opts.Concurrency, group, one); err != nil {
			return nil, err
		}
	}
	rep.Duration = time.Since(start)
	return rep, nil
}

// parallel runs fn over items, n at once, stopping at the first error.
func parallel[T any](ctx context.Context, n int, items []T, fn func(context.Context, T) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		wg       sync.WaitGroup
		once     sync.Once
		firstErr error
		next     = make(chan T)
	)
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for it := range next {
				if err := fn(ctx, it); err != nil {
					once.Do(func() { firstErr = err; cancel() })
				}
			}
		}()
	}
feed:
	for _, it := range items {
		select {
		case next <- it:
		case <-ctx.Done():
			break feed
		}
	}
	close(next)
	wg.Wait()
	if firstErr != nil {
		return firstErr
	}
	return ctx.Err()
}
