package export

import (
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/amber-kafka/amber/archive"
	"github.com/amber-kafka/amber/archive/file"
)

// VerifyOptions configures Verify.
type VerifyOptions struct {
	// PublicKey, if set, must have signed every manifest.
	PublicKey ed25519.PublicKey
	// Key decrypts an encrypted export. Without it the files of an
	// encrypted export are checked against their manifests only, not
	// read as archive objects.
	Key *archive.Key
	// Concurrency: objects read at once. Default
	// archive.DefaultVerifyConcurrency.
	Concurrency int
	// Progress, if set, is called with the bytes read so far and the
	// total to read.
	Progress func(done, total int64)
}

// VerifyReport is what Verify checked and found.
type VerifyReport struct {
	Manifests int   `json:"manifests"`
	Signed    int   `json:"signed"` // manifests with a signature that checks out
	Files     int   `json:"files"`  // listed by the manifests
	Bytes     int64 `json:"bytes"`  // read
	// SignedBy are the KeyIDs of the keys that signed.
	SignedBy []string `json:"signed_by,omitempty"`
	// Integrity is the archive check of the files (every index, segment,
	// block and batch); nil when it was skipped, as IntegrityNote says.
	Integrity     *archive.IntegrityReport `json:"integrity,omitempty"`
	IntegrityNote string                   `json:"integrity_note,omitempty"`
	Problems      []archive.Problem        `json:"problems"`
	Duration      time.Duration            `json:"duration_ns"`
}

// OK reports whether nothing but warnings was found.
func (r *VerifyReport) OK() bool {
	for _, p := range r.Problems {
		if !p.Warning {
			return false
		}
	}
	return true
}

// Verify checks the export in store with nothing but what it holds:
//
//   - the manifests form one chain (run numbers 1…n, each naming the one
//     before it by path and SHA-256) and each signature matches its
//     manifest; with PublicKey, every manifest is signed by it;
//   - the files present are exactly those the manifests list, each with
//     the size and SHA-256 listed: a changed, missing or extra file is a
//     problem;
//   - the files, read as an archive, pass archive.VerifyIntegrity (every
//     checksum, block and batch), unless the export is encrypted and no
//     Key is given.
//
// Each file is read once. The error is for a store that cannot be listed
// or read; everything wrong with the export is in the report.
func Verify(ctx context.Context, store archive.Store, opts VerifyOptions) (*VerifyReport, error) {
	if opts.Concurrency <= 0 {
		opts.Concurrency = archive.DefaultVerifyConcurrency
	}
	start := time.Now()
	c, err := readChain(ctx, store)
	if err != nil {
		return nil, err
	}
	rep := &VerifyReport{Manifests: len(c.manifests), Files: len(c.listed), Problems: append([]archive.Problem{}, c.problems...)}
	problem := func(object, format string, args ...any) {
		rep.Problems = append(rep.Problems, archive.Problem{Object: object, Block: -1, Message: fmt.Sprintf(format, args...)})
	}
	if len(c.manifests) == 0 {
		problem(ManifestDir, "no manifest: not an export (amber export writes one per run)")
	}
	for _, k := range c.extra {
		problem(k, "extra file: listed by no manifest (added after the export, or left by an interrupted export run)")
	}
	for _, l := range c.unsigned {
		problem(sigPath(l.path), "missing: %s says it is signed by key %s (an interrupted run: export again with that --sign-key to write it)", l.path, l.m.Signature.KeyID)
	}
	sawProblem := map[string]bool{}
	for _, p := range rep.Problems {
		sawProblem[p.Object] = true
	}
	signers := map[string]bool{}
	want := ""
	if opts.PublicKey != nil {
		want = KeyID(opts.PublicKey)
	}
	for _, l := range c.manifests {
		si := l.m.Signature
		good := si != nil && l.sig != nil && checkSignature(l) == nil
		if good {
			rep.Signed++
			signers[si.KeyID] = true
		}
		switch {
		case want == "":
		case si == nil && l.m.Format != "":
			problem(l.path, "not signed: --public-key %s requires every run to be signed by it", want)
		case si != nil && si.KeyID != want:
			problem(l.path, "signed by key %s, not by the --public-key given (key %s): the export does not come from that key's holder", si.KeyID, want)
		}
	}
	for id := range signers {
		rep.SignedBy = append(rep.SignedBy, id)
	}
	sort.Strings(rep.SignedBy)
	if fs, ok := store.(*file.Store); ok {
		for _, p := range strayEntries(fs.Dir()) {
			problem(p, "extra file: not a regular file, or a temporary file left by an interrupted write")
		}
	}

	// Content: hash every listed file present while the integrity check
	// reads it, then hash what it did not read.
	var total int64
	encrypted := false
	for _, l := range c.manifests {
		if len(l.m.EncryptionKeyIDs) > 0 {
			encrypted = true
		}
	}
	for k := range c.listed {
		total += c.objects[k]
	}
	hs := &hashingStore{Store: store, listed: c.listed, objects: c.objects, sums: map[string]string{}}
	hs.progress = func(n int64) {
		if d := hs.read.Add(n); opts.Progress != nil {
			opts.Progress(d, total)
		}
	}
	if encrypted && opts.Key == nil {
		rep.IntegrityNote = "the export is encrypted and no key was given: its files were checked against their manifests only; give --encryption-key-file to also check every block and batch"
	} else if len(c.listed) > 0 {
		ir, err := archive.VerifyIntegrity(ctx, hs, archive.VerifyOptions{Key: opts.Key, Concurrency: opts.Concurrency})
		if err != nil {
			return nil, err
		}
		rep.Integrity = ir
		for _, p := range ir.Problems {
			if !sawProblem[p.Object] || !p.Warning {
				rep.Problems = append(rep.Problems, p)
			}
		}
	}
	keys := make([]string, 0, len(c.listed))
	for k := range c.listed {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		l := c.listed[k]
		if size, ok := c.objects[k]; !ok || size != l.Size {
			continue // reported by the chain
		}
		got, ok := hs.sum(k)
		if !ok {
			if got, err = hs.hashFile(ctx, k); err != nil {
				return nil, err
			}
		}
		if got != l.SHA256 {
			problem(k, "SHA-256 %s, %s says %s: the file was changed", short(got), l.manifest, short(l.SHA256))
		}
	}
	rep.Bytes = hs.read.Load()
	rep.Duration = time.Since(start)
	sort.SliceStable(rep.Problems, func(i, j int) bool {
		if rep.Problems[i].Object != rep.Problems[j].Object {
			return rep.Problems[i].Object < rep.Problems[j].Object
		}
		return rep.Problems[i].Block < rep.Problems[j].Block
	})
	return rep, nil
}

func short(s string) string { return s[:min(16, len(s))] }

// strayEntries finds what a directory store's List does not show: its
// temporary files and anything not a regular file or directory.
func strayEntries(dir string) []string {
	var out []string
	filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || path == dir {
			return nil
		}
		rel, _ := filepath.Rel(dir, path)
		rel = filepath.ToSlash(rel)
		switch {
		case d.IsDir():
		case d.Type()&fs.ModeType != 0:
			out = append(out, rel)
		case strings.HasPrefix(d.Name(), ".tmp-"):
			out = append(out, rel)
		}
		return nil
	})
	return out
}

// hashingStore shows the integrity check only the listed files present,
// and hashes every one it reads whole.
type hashingStore struct {
	archive.Store
	listed   map[string]listing
	objects  map[string]int64
	progress func(int64)
	read     atomic.Int64

	mu   sync.Mutex // guards sums
	sums map[string]string
}

func (h *hashingStore) List(ctx context.Context, prefix string, fn func(archive.ObjectInfo) error) error {
	return h.Store.List(ctx, prefix, func(o archive.ObjectInfo) error {
		if _, ok := h.listed[o.Key]; !ok {
			return nil
		}
		return fn(o)
	})
}

func (h *hashingStore) Get(ctx context.Context, key string) (io.ReadCloser, error) {
	rc, err := h.Store.Get(ctx, key)
	if err != nil {
		return nil, err
	}
	return &hashingReader{rc: rc, h: sha256.New(), done: func(sum string) {
		h.mu.Lock()
		h.sums[key] = sum
		h.mu.Unlock()
	}, progress: h.progress}, nil
}

func (h *hashingStore) sum(key string) (string, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	s, ok := h.sums[key]
	return s, ok
}

func (h *hashingStore) hashFile(ctx context.Context, key string) (string, error) {
	rc, err := h.Get(ctx, key)
	if err != nil {
		return "", fmt.Errorf("read %s: %w", key, err)
	}
	defer rc.Close()
	if _, err := io.Copy(io.Discard, rc); err != nil {
		return "", fmt.Errorf("read %s: %w", key, err)
	}
	s, _ := h.sum(key)
	return s, nil
}

// hashingReader hashes what is read and reports the sum at EOF.
type hashingReader struct {
	rc       io.ReadCloser
	h        hash.Hash
	done     func(string)
	progress func(int64)
}

func (r *hashingReader) Read(p []byte) (int, error) {
	n, err := r.rc.Read(p)
	r.h.Write(p[:n])
	r.progress(int64(n))
	if err == io.EOF && r.done != nil {
		r.done(hex.EncodeToString(r.h.Sum(nil)))
		r.done = nil
	}
	return n, err
}

func (r *hashingReader) Close() error { return r.rc.Close() }
