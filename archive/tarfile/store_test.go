package tarfile_test

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/amber-kafka/amber/archive"
	"github.com/amber-kafka/amber/archive/tarfile"
)

func writeTar(t *testing.T, entries ...*tar.Header) string {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, h := range entries {
		body := strings.Repeat(h.Name[len(h.Name)-1:], int(h.Size))
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		io.WriteString(tw, body)
	}
	tw.Close()
	p := filepath.Join(t.TempDir(), "x.tar")
	os.WriteFile(p, buf.Bytes(), 0o644)
	return p
}

// TestExportTarStoreReadsInPlace: entries as `tar -C dir .` names them
// (./a/b), directories skipped, a later entry of the same name winning,
// ranged reads, and writes refused.
func TestExportTarStoreReadsInPlace(t *testing.T) {
	ctx := context.Background()
	long := strings.Repeat("d", 120) + "/f" // a PAX header before its data
	p := writeTar(t,
		&tar.Header{Typeflag: tar.TypeDir, Name: "./v1/", Mode: 0o755},
		&tar.Header{Typeflag: tar.TypeReg, Name: "./v1/a", Size: 700, Mode: 0o644},
		&tar.Header{Typeflag: tar.TypeReg, Name: long, Size: 3, Mode: 0o644},
		&tar.Header{Typeflag: tar.TypeReg, Name: "v1/b", Size: 5, Mode: 0o644},
		&tar.Header{Typeflag: tar.TypeReg, Name: "v1/b", Size: 2, Mode: 0o644},
	)
	s, err := tarfile.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var keys []string
	s.List(ctx, "v1/", func(o archive.ObjectInfo) error { keys = append(keys, o.Key); return nil })
	if strings.Join(keys, " ") != "v1/a v1/b" {
		t.Fatalf("List v1/: %v", keys)
	}
	read := func(rc io.ReadCloser, err error) string {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		defer rc.Close()
		b, _ := io.ReadAll(rc)
		return string(b)
	}
	if got := read(s.Get(ctx, "v1/a")); got != strings.Repeat("a", 700) {
		t.Errorf("Get v1/a: %d bytes", len(got))
	}
	if got := read(s.Get(ctx, "v1/b")); got != "bb" {
		t.Errorf("Get v1/b: %q, want the later entry", got)
	}
	if got := read(s.Get(ctx, long)); got != "fff" {
		t.Errorf("Get %s: %q", long, got)
	}
	if got := read(s.GetRange(ctx, "v1/a", 690, 100)); got != strings.Repeat("a", 10) {
		t.Errorf("GetRange past the end: %d bytes", len(got))
	}
	if _, err := s.Get(ctx, "v1/c"); !errors.Is(err, archive.ErrNotFound) {
		t.Errorf("Get of an absent key: %v", err)
	}
	if err := s.Put(ctx, "v1/c", strings.NewReader("x"), 1); !errors.Is(err, tarfile.ErrReadOnly) {
		t.Errorf("Put: %v", err)
	}

	link := writeTar(t, &tar.Header{Typeflag: tar.TypeSymlink, Name: "v1/l", Linkname: "/etc/passwd"})
	if _, err := tarfile.Open(link); err == nil || !strings.Contains(err.Error(), "not a regular file") {
		t.Errorf("a symlink entry: %v", err)
	}
}
