// Package file is an archive.Store in a local directory: the default
// archive (DATA/archive), an air-gapped export, or a mounted volume.
//
// Each object is a file at DIR/KEY. Put writes a temporary file, fsyncs
// it, and links it into place with link(2), which fails if the name exists:
// an object is created whole or not at all, and never replaced.
package file

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/amber-kafka/amber/archive"
)

// Store is a directory of archive objects.
type Store struct {
	dir string
}

var _ archive.Store = (*Store)(nil)

// New returns the store in dir, creating dir if needed.
func New(dir string) (*Store, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(abs, 0o755); err != nil {
		return nil, fmt.Errorf("archive directory %s: %w", abs, err)
	}
	return &Store{dir: abs}, nil
}

func (s *Store) String() string { return "file://" + s.dir }

// Dir is the store's directory.
func (s *Store) Dir() string { return s.dir }

func (s *Store) path(key string) (string, error) {
	if key == "" || strings.HasPrefix(key, "/") || strings.Contains(key, "..") || strings.Contains(key, "\\") {
		return "", fmt.Errorf("invalid object key %q", key)
	}
	return filepath.Join(s.dir, filepath.FromSlash(key)), nil
}

// Put creates key from r; see archive.Store.
func (s *Store) Put(ctx context.Context, key string, r io.Reader, size int64) error {
	path, err := s.path(key)
	if err != nil {
		return err
	}
	if _, err := os.Lstat(path); err == nil {
		return fmt.Errorf("%s: %w", key, archive.ErrExists)
	}
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(dir, ".tmp-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	n, err := io.Copy(tmp, r)
	if err == nil && size >= 0 && n != size {
		err = fmt.Errorf("put %s: read %d bytes, expected %d", key, n, size)
	}
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	if err := os.Link(tmp.Name(), path); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return fmt.Errorf("%s: %w", key, archive.ErrExists)
		}
		return err
	}
	return syncDir(dir)
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// Get opens key; see archive.Store.
func (s *Store) Get(ctx context.Context, key string) (io.ReadCloser, error) {
	path, err := s.path(key)
	if err != nil {
		return nil, err
	}
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%s: %w", key, archive.ErrNotFound)
	}
	return f, err
}

// GetRange opens a byte range of key; see archive.Store.
func (s *Store) GetRange(ctx context.Context, key string, offset, length int64) (io.ReadCloser, error) {
	rc, err := s.Get(ctx, key)
	if err != nil {
		return nil, err
	}
	f := rc.(*os.File)
	return struct {
		io.Reader
		io.Closer
	}{io.NewSectionReader(f, offset, length), f}, nil
}

// Stat describes key; see archive.Store.
func (s *Store) Stat(ctx context.Context, key string) (archive.ObjectInfo, error) {
	path, err := s.path(key)
	if err != nil {
		return archive.ObjectInfo{}, err
	}
	fi, err := os.Stat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return archive.ObjectInfo{}, fmt.Errorf("%s: %w", key, archive.ErrNotFound)
	}
	if err != nil {
		return archive.ObjectInfo{}, err
	}
	return archive.ObjectInfo{Key: key, Size: fi.Size(), Modified: fi.ModTime()}, nil
}

// List lists keys under prefix in order; see archive.Store.
func (s *Store) List(ctx context.Context, prefix string, fn func(archive.ObjectInfo) error) error {
	var out []archive.ObjectInfo
	err := filepath.WalkDir(s.dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() || strings.HasPrefix(d.Name(), ".tmp-") {
			return nil
		}
		rel, err := filepath.Rel(s.dir, path)
		if err != nil {
			return err
		}
		key := filepath.ToSlash(rel)
		if !strings.HasPrefix(key, prefix) {
			return nil
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		out = append(out, archive.ObjectInfo{Key: key, Size: fi.Size(), Modified: fi.ModTime()})
		return nil
	})
	if err != nil {
		return err
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	for _, o := range out {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := fn(o); err != nil {
			return err
		}
	}
	return nil
}

// Delete removes key; see archive.Store.
func (s *Store) Delete(ctx context.Context, key string) error {
	path, err := s.path(key)
	if err != nil {
		return err
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}
