package export_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/amber-kafka/amber/archive"
	"github.com/amber-kafka/amber/archive/export"
	"github.com/amber-kafka/amber/archive/file"
	"github.com/amber-kafka/amber/archive/memstore"
	"github.com/amber-kafka/amber/archive/tarfile"
	"github.com/amber-kafka/amber/internal/testkit"
)

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	return c
}

// source writes uploads into store with a Writer, one per call.
type source struct {
	t      *testing.T
	store  archive.Store
	w      *archive.Writer
	offset map[string]int64
}

func newSource(t *testing.T, store archive.Store, key *archive.Key) *source {
	w, err := archive.NewWriter(ctx(t), archive.WriterOptions{Store: store, WriterID: "00000000000000aa", Key: key})
	if err != nil {
		t.Fatal(err)
	}
	return &source{t: t, store: store, w: w, offset: map[string]int64{}}
}

func commit(group, topic string, offset int64, at time.Time) archive.Event {
	return archive.Event{Time: at, Kind: archive.KindOffsetCommit, Body: fmt.Appendf(nil, `{"group":%q,"topic":%q,"partition":0,"offset":%d,"leader_epoch":-1}`, group, topic, offset)}
}

// upload writes n one-record batches per topic, acknowledged a second
// apart from at, with a commit per topic, as one upload.
func (s *source) upload(at time.Time, n int, topics ...string) {
	s.t.Helper()
	var bs []archive.Batch
	var evs []archive.Event
	for _, topic := range topics {
		for i := 0; i < n; i++ {
			o := s.offset[topic]
			s.offset[topic]++
			bs = append(bs, archive.Batch{Topic: topic, Partition: 0, BaseOffset: o, AckTime: at.Add(time.Duration(i) * time.Second),
				LogAppendTime: -1, ClientID: "c", Data: testkit.RecordBatch(fmt.Appendf(nil, "k%d", o), fmt.Appendf(nil, "%s-%d", topic, o))})
		}
		evs = append(evs, commit("g", topic, s.offset[topic], at.Add(time.Duration(n)*time.Second)))
	}
	evs = append(evs, archive.Event{Time: at.Add(time.Hour), Kind: archive.KindEndTxn, Body: []byte(`{"transactional_id":"tx","producer_id":1,"producer_epoch":0,"commit":true}`)})
	if err := s.w.Write(ctx(s.t), bs, evs); err != nil {
		s.t.Fatal(err)
	}
	if err := s.w.Flush(ctx(s.t)); err != nil {
		s.t.Fatal(err)
	}
}

func run(t *testing.T, o export.Options) *export.Report {
	t.Helper()
	rep, err := export.Run(ctx(t), o)
	if err != nil {
		t.Fatalf("export: %v", err)
	}
	if len(rep.Damaged) > 0 {
		t.Fatalf("export found damage: %v", rep.Damaged)
	}
	return rep
}

func verify(t *testing.T, dir string, o export.VerifyOptions) *export.VerifyReport {
	t.Helper()
	st, err := file.New(dir)
	if err != nil {
		t.Fatal(err)
	}
	rep, err := export.Verify(ctx(t), st, o)
	if err != nil {
		t.Fatal(err)
	}
	return rep
}

func mustOK(t *testing.T, rep *export.VerifyReport) {
	t.Helper()
	if !rep.OK() {
		t.Fatalf("verify: %v", rep.Problems)
	}
}

// contents is every batch (topic/partition@offset: bytes) and event of
// an archive, as a reader sees them.
func contents(t *testing.T, store archive.Store, key *archive.Key) (batches map[string]string, events []string) {
	t.Helper()
	a, err := archive.OpenArchive(ctx(t), store, key)
	if err != nil {
		t.Fatal(err)
	}
	batches = map[string]string{}
	for _, c := range a.Coverage() {
		err := a.ReadPartition(ctx(t), c.Topic, c.Partition, func(b *archive.Batch) error {
			batches[fmt.Sprintf("%s/%d@%d", b.Topic, b.Partition, b.BaseOffset)] = fmt.Sprintf("%x %d %s", b.Data, b.AckTime.UnixMicro(), b.ClientID)
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	err = a.Events(ctx(t), func(_ string, ev *archive.Event) error {
		events = append(events, fmt.Sprintf("%s %s %s", ev.Time.Format(time.RFC3339), ev.Kind, ev.Body))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return batches, events
}

func files(t *testing.T, dir string) map[string]time.Time {
	t.Helper()
	out := map[string]time.Time{}
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			fi, _ := d.Info()
			rel, _ := filepath.Rel(dir, p)
			out[filepath.ToSlash(rel)] = fi.ModTime()
		}
		return nil
	})
	return out
}

// TestExportVerifyRoundTrip: an export holds exactly the source's batches
// and events and verifies; exporting again adds nothing; after more
// uploads, a third run adds only their files, in a second manifest that
// names the first, and touches no file already there.
func TestExportVerifyRoundTrip(t *testing.T) {
	src := memstore.New()
	s := newSource(t, src, nil)
	s.upload(t0, 10, "a", "b")
	s.upload(t0.Add(time.Minute), 5, "a")
	dir := filepath.Join(t.TempDir(), "export")

	rep := run(t, export.Options{Source: src, Dir: dir})
	if rep.Copied != 2 || rep.Files != 4 || rep.Run != 1 || rep.Batches != 25 {
		t.Fatalf("first run: %+v", rep)
	}
	mustOK(t, verify(t, dir, export.VerifyOptions{}))
	st, _ := file.New(dir)
	wantB, wantE := contents(t, src, nil)
	gotB, gotE := contents(t, st, nil)
	if fmt.Sprint(gotB) != fmt.Sprint(wantB) || fmt.Sprint(gotE) != fmt.Sprint(wantE) {
		t.Fatalf("export differs from its source:\n%v\n%v", gotB, wantB)
	}

	before := files(t, dir)
	rep = run(t, export.Options{Source: src, Dir: dir})
	if rep.Manifest != "" || rep.Present != 2 || rep.Files != 0 {
		t.Fatalf("second run with nothing new: %+v", rep)
	}
	if fmt.Sprint(files(t, dir)) != fmt.Sprint(before) {
		t.Fatal("a run with nothing new changed the export")
	}

	s.upload(t0.Add(2*time.Minute), 3, "b")
	rep = run(t, export.Options{Source: src, Dir: dir})
	if rep.Copied != 1 || rep.Present != 2 || rep.Files != 2 || rep.Run != 2 {
		t.Fatalf("third run: %+v", rep)
	}
	after := files(t, dir)
	for k, mod := range before {
		if !after[k].Equal(mod) {
			t.Errorf("%s was rewritten", k)
		}
	}
	if len(after) != len(before)+3 {
		t.Errorf("third run added %d files, want 2 and a manifest", len(after)-len(before))
	}
	var m export.Manifest
	b, _ := os.ReadFile(filepath.Join(dir, filepath.FromSlash(rep.Manifest)))
	if err := json.Unmarshal(b, &m); err != nil || m.Previous == nil || !strings.HasPrefix(m.Previous.Path, "manifest/00000001-") || len(m.Files) != 2 {
		t.Fatalf("second manifest: %v\n%s", err, b)
	}
	vr := verify(t, dir, export.VerifyOptions{})
	mustOK(t, vr)
	if vr.Manifests != 2 || vr.Files != 6 || vr.Integrity == nil || vr.Integrity.Batches != 28 {
		t.Fatalf("verify: %+v %+v", vr, vr.Integrity)
	}
}

func copyDir(t *testing.T, from string) string {
	t.Helper()
	to := t.TempDir()
	filepath.WalkDir(from, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			t.Fatal(err)
		}
		rel, _ := filepath.Rel(from, p)
		if d.IsDir() {
			return os.MkdirAll(filepath.Join(to, rel), 0o755)
		}
		b, _ := os.ReadFile(p)
		return os.WriteFile(filepath.Join(to, rel), b, 0o644)
	})
	return to
}

func glob(t *testing.T, dir, pattern string) string {
	t.Helper()
	m, _ := filepath.Glob(filepath.Join(dir, filepath.FromSlash(pattern)))
	if len(m) == 0 {
		t.Fatalf("no %s in %s", pattern, dir)
	}
	sort.Strings(m)
	rel, _ := filepath.Rel(dir, m[0])
	return filepath.ToSlash(rel)
}

// TestExportVerifyDetectsTampering: one byte changed in any file, a file
// removed, a file added (anywhere, even one a directory listing hides):
// each is a problem naming the file.
func TestExportVerifyDetectsTampering(t *testing.T) {
	src := memstore.New()
	s := newSource(t, src, nil)
	s.upload(t0, 10, "a")
	dir := t.TempDir()
	run(t, export.Options{Source: src, Dir: dir})
	s.upload(t0.Add(time.Hour), 10, "a")
	run(t, export.Options{Source: src, Dir: dir})
	mustOK(t, verify(t, dir, export.VerifyOptions{}))

	flip := func(rel string) func(string) string {
		return func(d string) string {
			p := filepath.Join(d, filepath.FromSlash(rel))
			b, _ := os.ReadFile(p)
			b[len(b)/2] ^= 0x01
			os.WriteFile(p, b, 0o644)
			return rel
		}
	}
	remove := func(rel string) func(string) string {
		return func(d string) string { os.Remove(filepath.Join(d, filepath.FromSlash(rel))); return rel }
	}
	add := func(rel string) func(string) string {
		return func(d string) string {
			p := filepath.Join(d, filepath.FromSlash(rel))
			os.MkdirAll(filepath.Dir(p), 0o755)
			os.WriteFile(p, []byte("x"), 0o644)
			return rel
		}
	}
	seg, idx := glob(t, dir, "v1/seg/*/*.seg"), glob(t, dir, "v1/idx/*/*.idx")
	first, second := glob(t, dir, "manifest/00000001-*.json"), glob(t, dir, "manifest/00000002-*.json")
	secondSeg := archive.SegmentKey("00000000000000aa", 1) // listed by the second manifest only
	renamed := func(d string) string { remove(first)(d); return second }
	for name, tamper := range map[string]func(string) string{
		"segment byte":       flip(seg),
		"index byte":         flip(idx),
		"first manifest":     flip(first),
		"last manifest":      flip(second),
		"segment removed":    remove(seg),
		"index removed":      remove(idx),
		"manifest removed":   renamed,
		"last manifest gone": func(d string) string { remove(second)(d); return secondSeg },
		"file added":         add("v1/seg/00000000000000aa/00000000000000ff.seg"),
		"note added":         add("README.txt"),
		"manifest added":     add("manifest/00000003-20300101T000000Z-0123456789abcdef.json"),
		"hidden temp file":   add("v1/seg/.tmp-123"),
	} {
		d := copyDir(t, dir)
		obj := tamper(d)
		rep := verify(t, d, export.VerifyOptions{})
		named := false
		for _, p := range rep.Problems {
			named = named || (p.Object == obj && !p.Warning)
		}
		if rep.OK() || !named {
			t.Errorf("%s: OK %v, problems %v: want one naming %s", name, rep.OK(), rep.Problems, obj)
		}
	}
}

// TestExportSignedVerify: a signed export verifies with its public key,
// fails with another or with a changed signature, and an unsigned one
// fails when a key is required.
func TestExportSignedVerify(t *testing.T) {
	keys := t.TempDir()
	pubA, err := export.GenerateKey(filepath.Join(keys, "a"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := export.GenerateKey(filepath.Join(keys, "a")); err == nil {
		t.Fatal("GenerateKey replaced a key")
	}
	privA, err := export.LoadPrivateKey(filepath.Join(keys, "a"))
	if err != nil {
		t.Fatal(err)
	}
	if pub, err := export.LoadPublicKey(filepath.Join(keys, "a.pub")); err != nil || !pub.Equal(pubA) {
		t.Fatalf("load public key: %v", err)
	}
	_, privB, _ := ed25519.GenerateKey(nil)
	os.WriteFile(filepath.Join(keys, "b.raw"), privB, 0o600)
	if k, err := export.LoadPrivateKey(filepath.Join(keys, "b.raw")); err != nil || !k.Equal(privB) {
		t.Fatalf("raw private key: %v", err)
	}
	os.WriteFile(filepath.Join(keys, "b.pub"), privB.Public().(ed25519.PublicKey), 0o644)
	pubB, err := export.LoadPublicKey(filepath.Join(keys, "b.pub"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := export.LoadPublicKey(filepath.Join(keys, "a")); err == nil || !strings.Contains(err.Error(), "give the public key") {
		t.Errorf("private key as public key: %v", err)
	}

	src := memstore.New()
	newSource(t, src, nil).upload(t0, 5, "a")
	dir := t.TempDir()
	rep := run(t, export.Options{Source: src, Dir: dir, SignKey: privA})
	if rep.SignedBy != export.KeyID(pubA) {
		t.Fatalf("signed by %q", rep.SignedBy)
	}
	vr := verify(t, dir, export.VerifyOptions{PublicKey: pubA})
	mustOK(t, vr)
	if vr.Signed != 1 || vr.SignedBy[0] != export.KeyID(pubA) {
		t.Fatalf("verify: %+v", vr)
	}
	if vr := verify(t, dir, export.VerifyOptions{PublicKey: pubB}); vr.OK() || !strings.Contains(fmt.Sprint(vr.Problems), "not by the --public-key given") {
		t.Errorf("wrong key: %v", vr.Problems)
	}
	// A changed signature fails with or without a key.
	d := copyDir(t, dir)
	sig := filepath.Join(d, filepath.FromSlash(glob(t, d, "manifest/*.sig")))
	b, _ := os.ReadFile(sig)
	b[0] ^= 1
	os.WriteFile(sig, b, 0o644)
	for _, k := range []ed25519.PublicKey{nil, pubA} {
		if vr := verify(t, d, export.VerifyOptions{PublicKey: k}); vr.OK() {
			t.Errorf("changed signature passes (key %v)", k != nil)
		}
	}
	// An unsigned export, when a key is required.
	plain := t.TempDir()
	run(t, export.Options{Source: src, Dir: plain})
	if vr := verify(t, plain, export.VerifyOptions{PublicKey: pubA}); vr.OK() || !strings.Contains(fmt.Sprint(vr.Problems), "not signed") {
		t.Errorf("unsigned export with --public-key: %v", vr.Problems)
	}
	// Import refuses an export not signed by the key given.
	fst, _ := file.New(dir)
	if _, err := export.Import(ctx(t), export.ImportOptions{From: fst, To: memstore.New(), PublicKey: pubB}); !errors.Is(err, export.ErrExportInvalid) {
		t.Errorf("import with the wrong key: %v", err)
	}
}

// TestExportSelection: --topic and --since/--until export only what was
// asked: uploads wholly inside are copied, those partly inside are
// derived with only the selected batches and the events that go with
// them; the result verifies, and again with the same selection adds
// nothing.
func TestExportSelection(t *testing.T) {
	src := memstore.New()
	s := newSource(t, src, nil)
	s.upload(t0, 10, "a", "b")                    // a 0-9, b 0-9; t0..t0+9s
	s.upload(t0.Add(time.Minute), 10, "a")        // a 10-19
	s.upload(t0.Add(2*time.Minute), 10, "b")      // b 10-19
	s.upload(t0.Add(3*time.Minute), 10, "a", "b") // a 20-29, b 20-29

	t.Run("topic", func(t *testing.T) {
		dir := t.TempDir()
		sel := archive.Selection{Topics: []string{"a"}}
		rep := run(t, export.Options{Source: src, Dir: dir, Selection: sel})
		// Uploads 1 and 4 hold b; 2 is a alone but its end_txn stays: whole.
		if rep.Copied != 1 || rep.Derived != 3 || rep.NotSelected != 0 || rep.Batches != 30 {
			t.Fatalf("report: %+v", rep)
		}
		mustOK(t, verify(t, dir, export.VerifyOptions{}))
		st, _ := file.New(dir)
		got, evs := contents(t, st, nil)
		want, _ := contents(t, src, nil)
		if len(got) != 30 {
			t.Fatalf("%d batches, want a's 30", len(got))
		}
		for k, v := range got {
			if !strings.HasPrefix(k, "a/") || want[k] != v {
				t.Errorf("%s: %q, source %q", k, v, want[k])
			}
		}
		for _, e := range evs {
			if strings.Contains(e, `"topic":"b"`) {
				t.Errorf("event of b exported: %s", e)
			}
		}
		if n := strings.Count(strings.Join(evs, "\n"), archive.KindEndTxn); n != 4 {
			t.Errorf("%d end_txn events, want 4", n)
		}
		if rep := run(t, export.Options{Source: src, Dir: dir, Selection: sel}); rep.Manifest != "" || rep.Present != 4 {
			t.Errorf("again: %+v", rep)
		}
	})
	t.Run("time", func(t *testing.T) {
		dir := t.TempDir()
		sel := archive.Selection{Since: t0.Add(5 * time.Second), Until: t0.Add(time.Minute + 4*time.Second)}
		rep := run(t, export.Options{Source: src, Dir: dir, Selection: sel})
		mustOK(t, verify(t, dir, export.VerifyOptions{}))
		st, _ := file.New(dir)
		got, evs := contents(t, st, nil)
		var keys []string
		for k := range got {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		// a 5-9 and b 5-9 from upload 1, a 10-14 from upload 2.
		if len(got) != 15 || keys[0] != "a/0@10" || keys[len(keys)-1] != "b/0@9" {
			t.Fatalf("report %+v; batches %v", rep, keys)
		}
		for _, e := range evs {
			if at, _ := time.Parse(time.RFC3339, strings.Fields(e)[0]); at.After(sel.Until) && !strings.Contains(e, archive.KindEndTxn) {
				t.Errorf("event after --until exported: %s", e)
			}
		}
	})
}

// TestExportEncrypted: an encrypted archive exports as it is without its
// key (still encrypted, verified against the manifests only), verifies
// in full with it, and needs it for a selection.
func TestExportEncrypted(t *testing.T) {
	key, _ := archive.NewKey(bytes.Repeat([]byte{7}, 32))
	src := memstore.New()
	s := newSource(t, src, key)
	s.upload(t0, 5, "a", "b")
	dir := t.TempDir()
	rep := run(t, export.Options{Source: src, Dir: dir})
	if rep.Unchecked != 1 {
		t.Fatalf("report: %+v", rep)
	}
	vr := verify(t, dir, export.VerifyOptions{})
	mustOK(t, vr)
	if vr.Integrity != nil || vr.IntegrityNote == "" {
		t.Fatalf("without the key: %+v", vr)
	}
	vr = verify(t, dir, export.VerifyOptions{Key: key})
	mustOK(t, vr)
	if vr.Integrity == nil || vr.Integrity.Batches != 10 {
		t.Fatalf("with the key: %+v", vr.Integrity)
	}

	sel := archive.Selection{Topics: []string{"a"}}
	if _, err := export.Run(ctx(t), export.Options{Source: src, Dir: t.TempDir(), Selection: sel}); !errors.Is(err, archive.ErrWrongKey) || !strings.Contains(err.Error(), "give its key") {
		t.Fatalf("selection without the key: %v", err)
	}
	sdir := t.TempDir()
	run(t, export.Options{Source: src, Dir: sdir, Selection: sel, Key: key})
	mustOK(t, verify(t, sdir, export.VerifyOptions{Key: key}))
	st, _ := file.New(sdir)
	if _, err := archive.OpenArchive(ctx(t), st, nil); !errors.Is(err, archive.ErrWrongKey) {
		t.Fatalf("derived upload readable without the key: %v", err)
	}
	if got, _ := contents(t, st, key); len(got) != 5 {
		t.Fatalf("%d batches, want 5", len(got))
	}
}

// TestExportInterruptedRunAdopted: a run that stopped before its manifest
// left files no manifest lists; verify calls them extra, and the next run
// adopts them (copied and derived, plain and encrypted) without writing
// them again.
func TestExportInterruptedRunAdopted(t *testing.T) {
	key, _ := archive.NewKey(bytes.Repeat([]byte{9}, 32))
	for _, tc := range []struct {
		name string
		key  *archive.Key
		sel  archive.Selection
	}{
		{"whole", nil, archive.Selection{}},
		{"derived", nil, archive.Selection{Topics: []string{"a"}}},
		{"derived encrypted", key, archive.Selection{Topics: []string{"a"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			src := memstore.New()
			newSource(t, src, tc.key).upload(t0, 5, "a", "b")
			dir := t.TempDir()
			run(t, export.Options{Source: src, Dir: dir, Selection: tc.sel, Key: tc.key})
			os.RemoveAll(filepath.Join(dir, "manifest")) // as if it stopped before its manifest
			if vr := verify(t, dir, export.VerifyOptions{Key: tc.key}); vr.OK() {
				t.Fatal("files without a manifest pass")
			}
			before := files(t, dir)
			tmp := filepath.Join(dir, "v1", "seg", ".tmp-123")
			os.WriteFile(tmp, []byte("half a segment"), 0o600) // and a write it was in
			rep := run(t, export.Options{Source: src, Dir: dir, Selection: tc.sel, Key: tc.key})
			if rep.Adopted != 2 || rep.Bytes != 0 || len(rep.Leftovers) != 0 {
				t.Fatalf("report: %+v", rep)
			}
			for k, mod := range before {
				if !files(t, dir)[k].Equal(mod) {
					t.Errorf("%s rewritten", k)
				}
			}
			mustOK(t, verify(t, dir, export.VerifyOptions{Key: tc.key}))
			if _, err := os.Stat(tmp); err == nil {
				t.Error("the interrupted write's temporary file is still there")
			}
		})
	}
}

// TestExportTarVerifyImport: --tar writes the same export as one stream;
// it verifies and reads without extracting, and imports into another
// store, where it reads as the source did.
func TestExportTarVerifyImport(t *testing.T) {
	src := memstore.New()
	s := newSource(t, src, nil)
	s.upload(t0, 5, "a")
	s.upload(t0.Add(time.Minute), 5, "b")
	var buf bytes.Buffer
	rep := run(t, export.Options{Source: src, Tar: &buf})
	if rep.Files != 4 {
		t.Fatalf("report: %+v", rep)
	}
	path := filepath.Join(t.TempDir(), "export.tar")
	os.WriteFile(path, buf.Bytes(), 0o644)
	ts, err := tarfile.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer ts.Close()
	vr, err := export.Verify(ctx(t), ts, export.VerifyOptions{})
	if err != nil {
		t.Fatal(err)
	}
	mustOK(t, vr)
	wantB, wantE := contents(t, src, nil)
	if gotB, gotE := contents(t, ts, nil); fmt.Sprint(gotB, gotE) != fmt.Sprint(wantB, wantE) {
		t.Fatal("tar reads differently from its source")
	}

	dst := memstore.New()
	ir, err := export.Import(ctx(t), export.ImportOptions{From: ts, To: dst})
	if err != nil {
		t.Fatal(err)
	}
	if ir.Uploaded != 4 || ir.Manifests != 1 {
		t.Fatalf("import: %+v", ir)
	}
	if gotB, gotE := contents(t, dst, nil); fmt.Sprint(gotB, gotE) != fmt.Sprint(wantB, wantE) {
		t.Fatal("imported archive differs from the source")
	}
	if ir, err := export.Import(ctx(t), export.ImportOptions{From: ts, To: dst}); err != nil || ir.Present != 4 || ir.Uploaded != 0 {
		t.Fatalf("import again: %+v %v", ir, err)
	}
	ir2, err := export.Import(ctx(t), export.ImportOptions{From: ts, To: src})
	if err != nil || ir2.Present != 4 {
		t.Fatalf("import into the source itself: %+v %v", ir2, err)
	}
}

// TestImportRefusesDamagedExport: an export that fails its check imports
// nothing.
func TestImportRefusesDamagedExport(t *testing.T) {
	src := memstore.New()
	newSource(t, src, nil).upload(t0, 5, "a")
	dir := t.TempDir()
	run(t, export.Options{Source: src, Dir: dir})
	p := filepath.Join(dir, filepath.FromSlash(glob(t, dir, "v1/seg/*/*.seg")))
	b, _ := os.ReadFile(p)
	os.WriteFile(p, append(b, 0), 0o644)
	st, _ := file.New(dir)
	dst := memstore.New()
	_, err := export.Import(ctx(t), export.ImportOptions{From: st, To: dst})
	if !errors.Is(err, export.ErrExportInvalid) || !strings.Contains(err.Error(), "the file was changed") {
		t.Fatalf("import of a damaged export: %v", err)
	}
	if dst.Puts() != 0 {
		t.Fatalf("%d objects imported", dst.Puts())
	}
	// And a further export into it refuses too.
	if _, err := export.Run(ctx(t), export.Options{Source: src, Dir: dir}); !errors.Is(err, export.ErrDamagedExport) {
		t.Fatalf("export into a damaged export: %v", err)
	}
}

// TestExportDamagedSourceUpload: an upload whose segment fails its
// index's SHA-256 is left out and reported; the rest is exported.
func TestExportDamagedSourceUpload(t *testing.T) {
	src := memstore.New()
	s := newSource(t, src, nil)
	s.upload(t0, 5, "a")
	s.upload(t0.Add(time.Minute), 5, "a")
	src.Corrupt(archive.SegmentKey("00000000000000aa", 0), 20)
	rep, err := export.Run(ctx(t), export.Options{Source: src, Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Damaged) != 1 || rep.Copied != 1 || !strings.Contains(rep.Damaged[0], "damaged in the source") {
		t.Fatalf("report: %+v", rep)
	}
}

func TestExportOptionsValidate(t *testing.T) {
	o := export.Options{Dir: "x", Tar: io.Discard, Concurrency: -1, SignKey: ed25519.PrivateKey{1},
		Selection: archive.Selection{Topics: []string{""}, Since: t0, Until: t0.Add(-time.Hour)}}
	err := o.Validate()
	for _, want := range []string{"no source", "exactly one", "concurrency", "signing key", "is after until", "empty topic"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Validate: %v, want it to mention %q", err, want)
		}
	}
}

// TestExportRefusesForeignDirectory: a directory holding other files and
// no manifest is not written into.
func TestExportRefusesForeignDirectory(t *testing.T) {
	src := memstore.New()
	newSource(t, src, nil).upload(t0, 1, "a")
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "thesis.pdf"), []byte("%PDF"), 0o644)
	if _, err := export.Run(ctx(t), export.Options{Source: src, Dir: dir}); err == nil || !strings.Contains(err.Error(), "not an export directory") {
		t.Fatalf("export into a foreign directory: %v", err)
	}
	if len(files(t, dir)) != 1 {
		t.Fatal("files were written")
	}
}

// TestExportLocksItsDirectory: a second run into a directory another run
// is writing into stops at once rather than racing it for a run number.
func TestExportLocksItsDirectory(t *testing.T) {
	src := memstore.New()
	newSource(t, src, nil).upload(t0, 1, "a")
	dir := t.TempDir()
	f, err := os.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		t.Skip("no flock:", err)
	}
	if _, err := export.Run(ctx(t), export.Options{Source: src, Dir: dir}); err == nil || !strings.Contains(err.Error(), "another amber export") {
		t.Fatalf("export into a locked directory: %v", err)
	}
	syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
	run(t, export.Options{Source: src, Dir: dir})
}
