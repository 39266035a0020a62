package export

import (
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/amber-kafka/amber/archive"
)

// Manifest format constants (part of the format).
const (
	// ManifestVersion is the manifest version this amber writes and the
	// newest it reads.
	ManifestVersion = 1
	// ManifestFormat is every manifest's "format" field.
	ManifestFormat = "amber-export-manifest"
	// ManifestDir holds the manifests and their signatures.
	ManifestDir = "manifest/"
	// SignatureAlgorithm is the only one there is.
	SignatureAlgorithm = "ed25519"
	manifestTime       = "20060102T150405Z"
)

// manifestName matches manifest/<run, 8 digits>-<UTC time>-<first 16
// hex digits of the manifest's SHA-256>.json|.sig.
var manifestName = regexp.MustCompile(`^manifest/([0-9]{8})-([0-9]{8}T[0-9]{6}Z)-([0-9a-f]{16})\.(json|sig)$`)

// Manifest is one export run's manifest: manifest/<run>-<time>-<sum>.json,
// where <sum> begins its SHA-256, so that any change to the last manifest
// (which no later one names) shows too. It
// lists the files that run added; the union of an export's manifests is
// every file the export holds but the manifests and signatures
// themselves. Each manifest names the one before it by path and SHA-256,
// so the runs form a chain and none can be dropped from the middle or
// changed without the next one disagreeing.
type Manifest struct {
	Format  string    `json:"format"`  // ManifestFormat
	Version int       `json:"version"` // ManifestVersion
	Run     int       `json:"run"`     // 1, 2, … in the order of the runs
	Created time.Time `json:"created"`
	// Source is the archive exported from, as given.
	Source string `json:"source"`
	// Selection is what was asked for; absent for everything.
	Selection *SelectionInfo `json:"selection,omitempty"`
	// Previous is the manifest of the run before; null for run 1.
	Previous *Ref `json:"previous"`
	// Signature, if set, says that manifest/<same name>.sig holds an
	// ed25519 signature of this manifest's bytes by this key.
	Signature *SignatureInfo `json:"signature,omitempty"`
	// EncryptionKeyIDs are the ids of the keys the files added are
	// encrypted with (archive.Key.ID); empty for a plaintext archive.
	EncryptionKeyIDs []string `json:"encryption_key_ids,omitempty"`
	// Files are the files this run added, sorted by path.
	Files []File `json:"files"`
}

// SelectionInfo is a manifest's record of --topic, --since and --until.
type SelectionInfo struct {
	Topics []string   `json:"topics,omitempty"`
	Since  *time.Time `json:"since,omitempty"`
	Until  *time.Time `json:"until,omitempty"`
}

// Ref names a manifest by path and SHA-256 (hex) of its bytes.
type Ref struct {
	Path   string `json:"path"`
	SHA256 string `json:"sha256"`
}

// File is one file of an export: its path in the export (an archive
// object key), size and SHA-256 (hex).
type File struct {
	Path   string `json:"path"`
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"`
}

// SignatureInfo names the key a manifest is signed with.
type SignatureInfo struct {
	Algorithm string `json:"algorithm"` // SignatureAlgorithm
	KeyID     string `json:"key_id"`    // KeyID of the public key
	PublicKey string `json:"public_key"`
}

func selectionInfo(sel archive.Selection) *SelectionInfo {
	if sel.IsZero() {
		return nil
	}
	si := &SelectionInfo{Topics: sel.Topics}
	if !sel.Since.IsZero() {
		t := sel.Since.UTC()
		si.Since = &t
	}
	if !sel.Until.IsZero() {
		t := sel.Until.UTC()
		si.Until = &t
	}
	return si
}

// ManifestPath is the path of run's manifest created at t with bytes
// raw; its signature is the same path with .sig for .json.
func ManifestPath(run int, t time.Time, raw []byte) string {
	return fmt.Sprintf("%s%08d-%s-%s.json", ManifestDir, run, t.UTC().Format(manifestTime), hexSum(raw)[:16])
}

func sigPath(manifest string) string { return strings.TrimSuffix(manifest, ".json") + ".sig" }

func hexSum(b []byte) string { s := sha256.Sum256(b); return hex.EncodeToString(s[:]) }

// loaded is one manifest as read.
type loaded struct {
	path string
	raw  []byte
	m    Manifest
	sig  []byte // nil: no signature file
}

// chain is an export as its manifests describe it, read without hashing
// any file: what verify, import and a further export start from.
type chain struct {
	manifests []*loaded // in run order
	listed    map[string]listing
	objects   map[string]int64 // every object in the store
	// problems make the export wrong: a broken chain, a manifest or
	// signature that does not read or match, a file listed twice, a
	// listed file missing or of another size.
	problems []archive.Problem
	// extra are files no manifest lists (added by hand, or left by an
	// interrupted run before it wrote its manifest).
	extra []string
	// unsigned are manifests that say they are signed whose signature
	// file is missing (a run interrupted between the two).
	unsigned []*loaded
}

type listing struct {
	File
	manifest string
}

func (c *chain) problem(object, format string, args ...any) {
	c.problems = append(c.problems, archive.Problem{Object: object, Block: -1, Message: fmt.Sprintf(format, args...)})
}

// readChain reads every manifest and signature of the export in store
// and checks them against each other and against the files present (by
// name and size: no file is hashed). The error is for a store that cannot
// be listed or read; everything wrong with the export is in the chain.
func readChain(ctx context.Context, store archive.Store) (*chain, error) {
	c := &chain{listed: map[string]listing{}, objects: map[string]int64{}}
	if err := store.List(ctx, "", func(o archive.ObjectInfo) error {
		c.objects[o.Key] = o.Size
		return nil
	}); err != nil {
		return nil, fmt.Errorf("list %s: %w", store, err)
	}
	var jsons []string
	sigs := map[string]bool{}
	for k := range c.objects {
		if !strings.HasPrefix(k, ManifestDir) {
			continue
		}
		m := manifestName.FindStringSubmatch(k)
		switch {
		case m == nil:
			c.problem(k, "not a manifest or signature amber export writes: added after the export")
		case m[4] == "json":
			jsons = append(jsons, k)
		default:
			sigs[k] = true
		}
	}
	sort.Strings(jsons)
	for i, path := range jsons {
		raw, err := readAll(ctx, store, path)
		if err != nil {
			return nil, err
		}
		l := &loaded{path: path, raw: raw}
		if err := json.Unmarshal(raw, &l.m); err != nil {
			c.problem(path, "does not parse as a manifest (%v): the file was changed", err)
			l.m = Manifest{Run: i + 1}
		} else if l.m.Format != ManifestFormat {
			c.problem(path, "format %q, want %q: not a manifest amber export writes", l.m.Format, ManifestFormat)
			l.m = Manifest{Run: i + 1}
		} else if l.m.Version > ManifestVersion || l.m.Version < 1 {
			c.problem(path, "manifest version %d, this amber reads up to %d: upgrade amber", l.m.Version, ManifestVersion)
			l.m = Manifest{Run: i + 1}
		}
		unread := l.m.Format == ""
		if sum := hexSum(raw); !strings.Contains(path, "-"+sum[:16]+".") {
			c.problem(path, "SHA-256 %s, its name says %s…: the manifest was changed", sum[:16], manifestName.FindStringSubmatch(path)[3])
		}
		num, _ := strconv.Atoi(manifestName.FindStringSubmatch(path)[1])
		if l.m.Run != i+1 || num != i+1 {
			c.problem(path, "is run %d of the chain by its position, its name says %d and its content %d: a manifest is missing or was added", i+1, num, l.m.Run)
		}
		var want *Ref
		if i > 0 {
			prev := c.manifests[i-1]
			want = &Ref{Path: prev.path, SHA256: hexSum(prev.raw)}
		}
		switch {
		case unread:
		case want == nil && l.m.Previous != nil:
			c.problem(path, "names %s as the run before it, which is not there: a manifest is missing", l.m.Previous.Path)
		case want != nil && l.m.Previous == nil:
			c.problem(path, "says it is the first run, but %s comes before it", want.Path)
		case want != nil && *l.m.Previous != *want:
			if l.m.Previous.Path != want.Path {
				c.problem(path, "names %s as the run before it, but %s comes before it: a manifest is missing or was added", l.m.Previous.Path, want.Path)
			} else {
				c.problem(want.Path, "SHA-256 %s, the next manifest %s says %s: the manifest was changed", want.SHA256[:16], path, l.m.Previous.SHA256[:min(16, len(l.m.Previous.SHA256))])
			}
		}
		sp := sigPath(path)
		if sigs[sp] {
			delete(sigs, sp)
			if l.sig, err = readAll(ctx, store, sp); err != nil {
				return nil, err
			}
		}
		switch {
		case unread:
		case l.m.Signature == nil && l.sig != nil:
			c.problem(sp, "a signature of a manifest that says it is not signed: added after the export")
		case l.m.Signature != nil && l.sig == nil:
			c.unsigned = append(c.unsigned, l)
		case l.m.Signature != nil:
			if err := checkSignature(l); err != nil {
				c.problem(sp, "%v", err)
			}
		}
		for _, f := range l.m.Files {
			switch {
			case !validPath(f.Path):
				c.problem(path, "lists %q, which is not a path an export holds", f.Path)
				continue
			case c.listed[f.Path].manifest != "":
				c.problem(f.Path, "listed by both %s and %s", c.listed[f.Path].manifest, path)
				continue
			}
			c.listed[f.Path] = listing{File: f, manifest: path}
			size, ok := c.objects[f.Path]
			switch {
			case !ok:
				c.problem(f.Path, "missing: listed by %s", path)
			case size != f.Size:
				c.problem(f.Path, "%d bytes, %s says %d: the file was changed", size, path, f.Size)
			}
		}
		c.manifests = append(c.manifests, l)
	}
	for sp := range sigs {
		c.problem(sp, "a signature without its manifest %s: the manifest was removed, or the signature added", strings.TrimSuffix(sp, ".sig")+".json")
	}
	for k := range c.objects {
		if _, ok := c.listed[k]; !ok && !strings.HasPrefix(k, ManifestDir) {
			c.extra = append(c.extra, k)
		}
	}
	sort.Strings(c.extra)
	sort.SliceStable(c.problems, func(i, j int) bool { return c.problems[i].Object < c.problems[j].Object })
	return c, nil
}

// validPath: a slash-separated relative path outside manifest/.
func validPath(p string) bool {
	return p != "" && !strings.HasPrefix(p, "/") && !strings.HasPrefix(p, ManifestDir) &&
		!strings.Contains(p, "\\") && !strings.Contains(p, "//") &&
		!strings.HasPrefix(p, "../") && !strings.Contains(p, "/../") && !strings.HasSuffix(p, "/..") && p != ".."
}

// checkSignature checks a signed manifest's signature against the key it
// names.
func checkSignature(l *loaded) error {
	si := l.m.Signature
	if si.Algorithm != SignatureAlgorithm {
		return fmt.Errorf("signature algorithm %q, this amber knows %s: upgrade amber", si.Algorithm, SignatureAlgorithm)
	}
	pub, err := base64.StdEncoding.DecodeString(si.PublicKey)
	if err != nil || len(pub) != ed25519.PublicKeySize {
		return fmt.Errorf("the public key in %s does not read: the manifest was changed", l.path)
	}
	if KeyID(pub) != si.KeyID {
		return fmt.Errorf("%s names key id %s for public key %s: the manifest was changed", l.path, si.KeyID, KeyID(pub))
	}
	if len(l.sig) != ed25519.SignatureSize || !ed25519.Verify(pub, l.raw, l.sig) {
		return fmt.Errorf("does not match %s by key %s: the manifest or its signature was changed", l.path, si.KeyID)
	}
	return nil
}

func readAll(ctx context.Context, store archive.Store, key string) ([]byte, error) {
	rc, err := store.Get(ctx, key)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", key, err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", key, err)
	}
	return b, nil
}
