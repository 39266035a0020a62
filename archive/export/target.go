package export

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/amber-kafka/amber/archive"
	"github.com/amber-kafka/amber/archive/file"
)

// target is where an export run writes: a directory (file.Store, which
// never replaces a file) or a tar stream.
type target interface {
	// put creates key with b. A key that exists is an error matching
	// archive.ErrExists.
	put(ctx context.Context, key string, b []byte) error
	// get reads an existing file (a directory only).
	get(ctx context.Context, key string) ([]byte, error)
	close() error
}

type dirTarget struct{ s *file.Store }

func (d dirTarget) put(ctx context.Context, key string, b []byte) error {
	return d.s.Put(ctx, key, bytes.NewReader(b), int64(len(b)))
}
func (d dirTarget) get(ctx context.Context, key string) ([]byte, error) {
	return readAll(ctx, d.s, key)
}
func (d dirTarget) close() error { return nil }

// tarTarget writes each file as a regular tar entry as it comes; the
// manifest (written last) ends the stream.
type tarTarget struct {
	mu   sync.Mutex // guards w and seen; entries are written whole
	w    *tar.Writer
	seen map[string]bool
	now  time.Time
}

func newTarTarget(w io.Writer, now time.Time) *tarTarget {
	return &tarTarget{w: tar.NewWriter(w), seen: map[string]bool{}, now: now.Truncate(time.Second)}
}

func (t *tarTarget) put(ctx context.Context, key string, b []byte) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.seen[key] {
		return fmt.Errorf("%s: %w", key, archive.ErrExists)
	}
	t.seen[key] = true
	hdr := &tar.Header{Typeflag: tar.TypeReg, Name: key, Size: int64(len(b)), Mode: 0o444, ModTime: t.now}
	if err := t.w.WriteHeader(hdr); err != nil {
		return fmt.Errorf("tar %s: %w", key, err)
	}
	if _, err := t.w.Write(b); err != nil {
		return fmt.Errorf("tar %s: %w", key, err)
	}
	return nil
}

func (t *tarTarget) get(ctx context.Context, key string) ([]byte, error) {
	return nil, errors.New("a tar stream is not read back")
}

func (t *tarTarget) close() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.w.Close()
}
