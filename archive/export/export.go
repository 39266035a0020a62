package export

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/amber-kafka/amber/archive"
	"github.com/amber-kafka/amber/archive/file"
)

// DefaultConcurrency is how many uploads an export or import moves at
// once.
const DefaultConcurrency = 4

// Options configures Run.
type Options struct {
	// Source is the archive to export from. Required.
	Source archive.Store
	// SourceName is how the manifest names the source. Default
	// Source.String().
	SourceName string
	// Key decrypts an encrypted source. Without a Selection it is not
	// needed: uploads are copied as they are, still encrypted (and then
	// checked against their indexes only if Key is given). With one it is
	// required, and derived uploads are encrypted with it.
	Key *archive.Key
	// Selection limits the export to some topics or a time window. The
	// zero value exports everything.
	Selection archive.Selection
	// Dir is the export directory, created if needed; a further run adds
	// what is new. Exactly one of Dir and Tar.
	Dir string
	// Tar receives the export as a tar stream instead: a complete export
	// of one run.
	Tar io.Writer
	// SignKey, if set, signs the manifest.
	SignKey ed25519.PrivateKey
	// Concurrency: uploads moved at once. Default DefaultConcurrency.
	Concurrency int
	// Progress, if set, is called with the source bytes read so far and
	// the total to read. It may be called from several goroutines.
	Progress func(done, total int64)
	// Now is the clock. Default time.Now.
	Now func() time.Time
}

// EnsureDefaults fills in the defaults.
func (o *Options) EnsureDefaults() {
	if o.Concurrency == 0 {
		o.Concurrency = DefaultConcurrency
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.SourceName == "" && o.Source != nil {
		o.SourceName = o.Source.String()
	}
}

// Validate reports every problem with the options at once.
func (o *Options) Validate() error {
	var errs []error
	if o.Source == nil {
		errs = append(errs, errors.New("export: no source archive"))
	}
	if (o.Dir == "") == (o.Tar == nil) {
		errs = append(errs, errors.New("export: want exactly one of an export directory and a tar stream"))
	}
	if o.Concurrency < 1 {
		errs = append(errs, fmt.Errorf("export: concurrency %d: want at least 1", o.Concurrency))
	}
	if o.SignKey != nil && len(o.SignKey) != ed25519.PrivateKeySize {
		errs = append(errs, fmt.Errorf("export: signing key of %d bytes, want an ed25519 private key", len(o.SignKey)))
	}
	s := &o.Selection
	if !s.Since.IsZero() && !s.Until.IsZero() && s.Since.After(s.Until) {
		errs = append(errs, fmt.Errorf("export: since %s is after until %s", s.Since.Format(time.RFC3339), s.Until.Format(time.RFC3339)))
	}
	for _, t := range s.Topics {
		if t == "" {
			errs = append(errs, errors.New("export: an empty topic name"))
		}
	}
	return errors.Join(errs...)
}

// Report is what an export run did.
type Report struct {
	Target string `json:"target"`
	// Manifest is the path of the manifest written, "" if there was
	// nothing new to export.
	Manifest string `json:"manifest,omitempty"`
	Run      int    `json:"run,omitempty"`
	// SignedBy is the KeyID of the signing key, if signed.
	SignedBy string `json:"signed_by,omitempty"`
	// Uploads copied whole (byte for byte), derived (rewritten with only
	// the selected part), already in the export, and not selected.
	Copied      int `json:"uploads_copied"`
	Derived     int `json:"uploads_derived"`
	Present     int `json:"uploads_present"`
	NotSelected int `json:"uploads_not_selected"`
	// Unchecked counts encrypted uploads copied without the key: their
	// segments could not be checked against their indexes.
	Unchecked int `json:"uploads_unchecked,omitempty"`
	// Adopted counts files an interrupted run had left, found to be
	// exactly what this run would write, and listed by its manifest.
	Adopted int   `json:"files_adopted,omitempty"`
	Files   int   `json:"files"`
	Bytes   int64 `json:"bytes"` // of the files added
	Batches int64 `json:"batches"`
	Records int64 `json:"records"`
	Events  int64 `json:"events"`
	// SourceBytes is what was read from the source.
	SourceBytes int64 `json:"source_bytes"`
	// Damaged are source uploads left out because they fail their
	// checksums, each with the reason. The rest was exported.
	Damaged []string `json:"damaged,omitempty"`
	// Leftovers are files in the export directory no manifest lists and
	// this run did not adopt: verify reports them as extra files.
	Leftovers []string `json:"leftovers,omitempty"`
	// Resigned lists manifests whose missing signature this run wrote
	// (an earlier run interrupted between manifest and signature).
	Resigned []string      `json:"resigned,omitempty"`
	Duration time.Duration `json:"duration_ns"`
}

// ErrDamagedExport is returned when the export directory a run would add
// to fails its own check.
var ErrDamagedExport = errors.New("export directory fails its check")

// Run exports. Files are written first, each once and never replaced;
// the manifest listing them is written last, then its signature: a run
// interrupted before its manifest leaves files no manifest lists, which
// the next run adopts when they are exactly what it would write.
func Run(ctx context.Context, opts Options) (*Report, error) {
	opts.EnsureDefaults()
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	start := opts.Now()
	e := &exporter{opts: opts, rep: &Report{}, leftovers: map[string]bool{}, listed: map[string]bool{}}
	c := &chain{listed: map[string]listing{}}
	if opts.Dir != "" {
		st, err := file.New(opts.Dir)
		if err != nil {
			return nil, err
		}
		e.rep.Target = st.String()
		unlock, err := lockDir(st.Dir())
		if err != nil {
			return nil, err
		}
		defer unlock()
		// Temporary files of writes a crash interrupted are no part of
		// the export, and only a run (which holds the lock) makes them.
		for _, p := range strayEntries(st.Dir()) {
			if strings.HasPrefix(path.Base(p), ".tmp-") {
				os.Remove(filepath.Join(st.Dir(), filepath.FromSlash(p)))
			}
		}
		if c, err = readChain(ctx, st); err != nil {
			return nil, err
		}
		if len(c.problems) > 0 {
			var lines []string
			for _, p := range c.problems {
				lines = append(lines, "  "+p.String())
			}
			return nil, fmt.Errorf("%w: %s:\n%s\nexport never rewrites a file: run amber verify --archive %s, and export into a new directory",
				ErrDamagedExport, opts.Dir, strings.Join(lines, "\n"), opts.Dir)
		}
		for _, k := range c.extra {
			if len(c.manifests) == 0 && !strings.HasPrefix(k, "v1/") {
				return nil, fmt.Errorf("%s holds %s and no manifest: it is not an export directory; export into an empty directory, or one an earlier export wrote", opts.Dir, k)
			}
			e.leftovers[k] = true
		}
		e.t = dirTarget{st}
		if err := e.resign(ctx, c); err != nil {
			return nil, err
		}
	} else {
		e.rep.Target = "tar stream"
		e.t = newTarTarget(opts.Tar, start)
	}
	for k := range c.listed {
		e.listed[k] = true
	}

	items, total, err := e.plan(ctx)
	if err != nil {
		return nil, err
	}
	e.total = total
	if err := e.run(ctx, items); err != nil {
		return nil, err
	}
	if len(e.files) > 0 {
		if err := e.writeManifest(ctx, c, start); err != nil {
			return nil, err
		}
	}
	if err := e.t.close(); err != nil {
		return nil, fmt.Errorf("finish tar stream: %w", err)
	}
	for k := range e.leftovers {
		e.rep.Leftovers = append(e.rep.Leftovers, k)
	}
	sort.Strings(e.rep.Leftovers)
	sort.Strings(e.rep.Damaged)
	e.rep.SourceBytes = e.read.Load()
	e.rep.Duration = opts.Now().Sub(start)
	return e.rep, nil
}

type exporter struct {
	opts  Options
	t     target
	total int64
	read  atomic.Int64
	// listed are the files the export's manifests list (read only once
	// planning is done).
	listed map[string]bool

	mu        sync.Mutex // guards what follows
	rep       *Report
	files     []File
	keyIDs    map[string]bool
	leftovers map[string]bool
}

// item is one source upload to export.
type item struct {
	writer string
	seq    uint64
	idx    string
	seg    string
	size   int64 // index plus segment
}

// plan lists the source's uploads and keeps those the export lacks.
func (e *exporter) plan(ctx context.Context) ([]item, int64, error) {
	segs := map[string]int64{}
	var idxs []archive.ObjectInfo
	err := e.opts.Source.List(ctx, "v1/", func(o archive.ObjectInfo) error {
		switch {
		case strings.HasPrefix(o.Key, "v1/seg/") && strings.HasSuffix(o.Key, ".seg"):
			segs[o.Key] = o.Size
		case strings.HasPrefix(o.Key, "v1/idx/") && strings.HasSuffix(o.Key, ".idx"):
			idxs = append(idxs, o)
		}
		return nil
	})
	if err != nil {
		return nil, 0, fmt.Errorf("list %s: %w", e.opts.Source, err)
	}
	var (
		items []item
		total int64
	)
	for _, o := range idxs {
		writer, seq, ok := parseIndexKey(o.Key)
		if !ok {
			continue // not an object Amber writes
		}
		it := item{writer: writer, seq: seq, idx: o.Key, seg: archive.SegmentKey(writer, seq)}
		size, ok := segs[it.seg]
		if !ok {
			e.rep.Damaged = append(e.rep.Damaged, fmt.Sprintf("%s: its segment %s is missing", it.idx, it.seg))
			continue
		}
		if e.listed[it.idx] || (!e.opts.Selection.IsZero() && e.listed[archive.IndexKey(archive.DerivedWriterID(writer, e.opts.Selection), seq)]) {
			e.rep.Present++
			continue
		}
		it.size = o.Size + size
		total += it.size
		items = append(items, it)
	}
	return items, total, nil
}

func parseIndexKey(key string) (writer string, seq uint64, ok bool) {
	rest := strings.TrimSuffix(strings.TrimPrefix(key, "v1/idx/"), ".idx")
	w, s, found := strings.Cut(rest, "/")
	if !found || len(w) != 16 || len(s) != 16 {
		return "", 0, false
	}
	n, err := strconv.ParseUint(s, 16, 64)
	if err != nil || archive.IndexKey(w, n) != key {
		return "", 0, false
	}
	return w, n, true
}

// run exports the items, Concurrency at once; the first error stops it.
func (e *exporter) run(ctx context.Context, items []item) error {
	return parallel(ctx, e.opts.Concurrency, items, e.upload)
}

func (e *exporter) progress(n int64) {
	d := e.read.Add(n)
	if e.opts.Progress != nil {
		e.opts.Progress(d, e.total)
	}
}

func (e *exporter) damaged(format string, args ...any) {
	e.mu.Lock()
	e.rep.Damaged = append(e.rep.Damaged, fmt.Sprintf(format, args...))
	e.mu.Unlock()
}

// upload exports one source upload: whole, derived, or not at all.
func (e *exporter) upload(ctx context.Context, it item) error {
	sel := e.opts.Selection
	idxRaw, err := readAll(ctx, e.opts.Source, it.idx)
	if err != nil {
		return err
	}
	e.progress(int64(len(idxRaw)))
	ix, err := archive.DecodeIndex(it.idx, idxRaw, e.opts.Key)
	switch {
	case err == nil:
	case errors.Is(err, archive.ErrWrongKey) && e.opts.Key == nil && sel.IsZero():
		ix = nil // copied as it is; its checksum was checked
	case errors.Is(err, archive.ErrWrongKey) && e.opts.Key == nil:
		return fmt.Errorf("%w: --topic, --since and --until read what an encrypted archive holds: give its key", err)
	case errors.Is(err, archive.ErrWrongKey):
		return err
	case errors.Is(err, archive.ErrCorrupt), errors.Is(err, archive.ErrFormat):
		e.progress(it.size - int64(len(idxRaw)))
		e.damaged("%v", err)
		return nil
	default:
		return err
	}
	if !sel.IsZero() {
		sub, err := archive.SubsetUpload(ctx, e.opts.Source, e.opts.Key, ix, sel)
		e.progress(it.size - int64(len(idxRaw)))
		switch {
		case errors.Is(err, archive.ErrCorrupt):
			e.damaged("%s: %v", it.idx, err)
			return nil
		case err != nil:
			return err
		case sub.Empty():
			e.mu.Lock()
			e.rep.NotSelected++
			e.mu.Unlock()
			return nil
		case !sub.Whole:
			return e.derived(ctx, ix, sub)
		}
		// Whole: copied below, re-reading the segment (it was not read).
		seg, err := readAll(ctx, e.opts.Source, it.seg)
		if err != nil {
			return err
		}
		return e.whole(ctx, it, ix, idxRaw, seg)
	}
	seg, err := readAll(ctx, e.opts.Source, it.seg)
	if err != nil {
		return err
	}
	e.progress(int64(len(seg)))
	return e.whole(ctx, it, ix, idxRaw, seg)
}

// whole copies an upload byte for byte, segment first, once its segment
// matches its index (when the index could be read).
func (e *exporter) whole(ctx context.Context, it item, ix *archive.Index, idxRaw, seg []byte) error {
	if ix != nil {
		if int64(len(seg)) != ix.SegSize || sha256.Sum256(seg) != ix.SegSHA256 {
			e.damaged("%s: %d bytes whose SHA-256 does not match its index %s: damaged in the source (amber verify --archive on the source says more)", it.seg, len(seg), it.idx)
			return nil
		}
	}
	if err := e.put(ctx, it.seg, seg); err != nil {
		return err
	}
	if err := e.put(ctx, it.idx, idxRaw); err != nil {
		return err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	e.rep.Copied++
	if ix == nil {
		e.rep.Unchecked++
	} else {
		countIndex(e.rep, ix)
	}
	e.keyIDLocked(archive.IndexKeyID(idxRaw))
	return nil
}

func countIndex(rep *Report, ix *archive.Index) {
	for i := range ix.Blocks {
		b := &ix.Blocks[i]
		rep.Batches += int64(len(b.Batches))
		for _, m := range b.Batches {
			rep.Records += m.Records
		}
		rep.Events += b.Events
	}
}

func (e *exporter) keyIDLocked(id string) {
	if id == "" {
		return
	}
	if e.keyIDs == nil {
		e.keyIDs = map[string]bool{}
	}
	e.keyIDs[id] = true
}

// derived writes a partly selected upload's derived objects, segment
// first. An interrupted run may have left them: an identical file is
// adopted by put; a complete derived upload (index and the segment it
// describes) is adopted whole even if encryption made this run's bytes
// differ.
func (e *exporter) derived(ctx context.Context, src *archive.Index, sub *archive.Subset) error {
	segKey, idxKey := archive.SegmentKey(sub.Writer, sub.Seq), archive.IndexKey(sub.Writer, sub.Seq)
	e.mu.Lock()
	leftIdx, leftSeg := e.leftovers[idxKey], e.leftovers[segKey]
	e.mu.Unlock()
	if leftIdx && leftSeg {
		ok, err := e.adoptPair(ctx, idxKey, segKey)
		if err != nil {
			return err
		}
		if ok {
			return e.countDerived(sub, src, sub.Index)
		}
	}
	if err := e.put(ctx, segKey, sub.Segment); err != nil {
		return err
	}
	if err := e.put(ctx, idxKey, sub.Index); err != nil {
		return err
	}
	return e.countDerived(sub, src, sub.Index)
}

func (e *exporter) countDerived(sub *archive.Subset, src *archive.Index, idx []byte) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.rep.Derived++
	e.rep.Batches += sub.Batches
	e.rep.Records += sub.Records
	e.rep.Events += sub.Events
	e.keyIDLocked(src.KeyID)
	return nil
}

// adoptPair adopts a derived upload an interrupted run left whole: its
// index reads, and its segment is the size and SHA-256 the index says.
func (e *exporter) adoptPair(ctx context.Context, idxKey, segKey string) (bool, error) {
	idx, err := e.t.get(ctx, idxKey)
	if err != nil {
		return false, err
	}
	ix, err := archive.DecodeIndex(idxKey, idx, e.opts.Key)
	if err != nil || ix.Segment != segKey {
		return false, nil
	}
	seg, err := e.t.get(ctx, segKey)
	if err != nil {
		return false, err
	}
	if int64(len(seg)) != ix.SegSize || sha256.Sum256(seg) != ix.SegSHA256 {
		return false, nil
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, o := range []struct {
		key string
		b   []byte
	}{{segKey, seg}, {idxKey, idx}} {
		delete(e.leftovers, o.key)
		e.files = append(e.files, File{Path: o.key, Size: int64(len(o.b)), SHA256: hexSum(o.b)})
		e.rep.Adopted++
	}
	return true, nil
}

// put writes one file. A file an interrupted run left under that name is
// adopted if it holds exactly these bytes; other bytes are an error,
// since an export never replaces a file.
func (e *exporter) put(ctx context.Context, key string, b []byte) error {
	f := File{Path: key, Size: int64(len(b)), SHA256: hexSum(b)}
	err := e.t.put(ctx, key, b)
	adopted := false
	if errors.Is(err, archive.ErrExists) {
		have, gerr := e.t.get(ctx, key)
		if gerr != nil {
			return gerr
		}
		if !bytes.Equal(have, b) {
			return fmt.Errorf("%s is in the export but in no manifest, and holds other bytes than this run writes (left by an interrupted export, or put there by hand): an export never replaces a file; delete it and run again", key)
		}
		adopted, err = true, nil
	}
	if err != nil {
		return fmt.Errorf("write %s: %w", key, err)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	delete(e.leftovers, key)
	e.files = append(e.files, f)
	if adopted {
		e.rep.Adopted++
	} else {
		e.rep.Bytes += f.Size
	}
	return nil
}

// writeManifest writes this run's manifest, then its signature.
func (e *exporter) writeManifest(ctx context.Context, c *chain, start time.Time) error {
	sort.Slice(e.files, func(i, j int) bool { return e.files[i].Path < e.files[j].Path })
	m := Manifest{Format: ManifestFormat, Version: ManifestVersion, Run: len(c.manifests) + 1, Created: start.UTC(),
		Source: e.opts.SourceName, Selection: selectionInfo(e.opts.Selection), Files: e.files}
	if n := len(c.manifests); n > 0 {
		prev := c.manifests[n-1]
		m.Previous = &Ref{Path: prev.path, SHA256: hexSum(prev.raw)}
	}
	for id := range e.keyIDs {
		m.EncryptionKeyIDs = append(m.EncryptionKeyIDs, id)
	}
	sort.Strings(m.EncryptionKeyIDs)
	if e.opts.SignKey != nil {
		pub := e.opts.SignKey.Public().(ed25519.PublicKey)
		m.Signature = &SignatureInfo{Algorithm: SignatureAlgorithm, KeyID: KeyID(pub), PublicKey: base64.StdEncoding.EncodeToString(pub)}
		e.rep.SignedBy = m.Signature.KeyID
	}
	raw, err := json.MarshalIndent(&m, "", "  ")
	if err != nil {
		return err
	}
	raw = append(raw, '\n')
	path := ManifestPath(m.Run, m.Created, raw)
	if err := e.t.put(ctx, path, raw); err != nil {
		return fmt.Errorf("write manifest %s: %w", path, err)
	}
	e.rep.Manifest, e.rep.Run = path, m.Run
	e.rep.Files = len(e.files)
	if e.opts.SignKey != nil {
		if err := e.t.put(ctx, sigPath(path), ed25519.Sign(e.opts.SignKey, raw)); err != nil {
			return fmt.Errorf("write signature of %s (export again with the same --sign-key to write it): %w", path, err)
		}
	}
	return nil
}

// resign writes the signature a run interrupted after its manifest did
// not, if this run signs with the key that manifest names.
func (e *exporter) resign(ctx context.Context, c *chain) error {
	if e.opts.SignKey == nil {
		return nil
	}
	id := KeyID(e.opts.SignKey.Public().(ed25519.PublicKey))
	for _, l := range c.unsigned {
		if l.m.Signature.KeyID != id {
			continue
		}
		if err := e.t.put(ctx, sigPath(l.path), ed25519.Sign(e.opts.SignKey, l.raw)); err != nil {
			return fmt.Errorf("write the missing signature of %s: %w", l.path, err)
		}
		e.rep.Resigned = append(e.rep.Resigned, l.path)
	}
	return nil
}
