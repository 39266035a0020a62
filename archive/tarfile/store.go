// Package tarfile is a read-only archive.Store over a tar file: an export
// written with `amber export --tar`, read (verified, imported, listed,
// restored from) without extracting it.
//
// Open reads the tar's headers once and remembers where each regular
// file's bytes are; Get and GetRange are then reads of those byte ranges
// of the file. An entry named twice (a file appended with `tar -r`) is
// the later one, as tar extracts it. Put and Delete fail: a tar is
// written whole by amber export.
package tarfile

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"sort"
	"strings"

	"github.com/amber-kafka/amber/archive"
)

// ErrReadOnly is returned by Put and Delete.
var ErrReadOnly = errors.New("a tar export is read-only: extract it to write into it")

// Store is an open tar file.
type Store struct {
	f       *os.File
	name    string
	entries map[string]entry
	keys    []string // sorted
}

type entry struct {
	offset, size int64
	info         archive.ObjectInfo
}

var _ archive.Store = (*Store)(nil)

// Open reads the tar file's headers. Entries that are not regular files
// or directories (links, devices) are an error: an export holds none.
func Open(file string) (*Store, error) {
	f, err := os.Open(file)
	if err != nil {
		return nil, err
	}
	s := &Store{f: f, name: "tar://" + file, entries: map[string]entry{}}
	tr := tar.NewReader(f)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			f.Close()
			return nil, fmt.Errorf("%s: not a readable tar file: %w", file, err)
		}
		name := strings.TrimPrefix(path.Clean("/"+hdr.Name), "/")
		switch hdr.Typeflag {
		case tar.TypeDir:
			continue
		case tar.TypeReg:
			for k := range hdr.PAXRecords {
				if strings.HasPrefix(k, "GNU.sparse.") {
					f.Close()
					return nil, fmt.Errorf("%s: entry %s is a sparse file: an export holds none", file, hdr.Name)
				}
			}
		default:
			f.Close()
			return nil, fmt.Errorf("%s: entry %s is not a regular file (type %q): an export holds only files", file, hdr.Name, hdr.Typeflag)
		}
		// tar.Reader reads headers in whole blocks and no further, so the
		// file's position is where this entry's bytes start.
		off, err := f.Seek(0, io.SeekCurrent)
		if err != nil {
			f.Close()
			return nil, err
		}
		s.entries[name] = entry{offset: off, size: hdr.Size, info: archive.ObjectInfo{Key: name, Size: hdr.Size, Modified: hdr.ModTime}}
	}
	for k := range s.entries {
		s.keys = append(s.keys, k)
	}
	sort.Strings(s.keys)
	return s, nil
}

// Close closes the tar file.
func (s *Store) Close() error { return s.f.Close() }

func (s *Store) String() string { return s.name }

// Put fails: see ErrReadOnly.
func (s *Store) Put(ctx context.Context, key string, r io.Reader, size int64) error {
	return fmt.Errorf("put %s: %w", key, ErrReadOnly)
}

// Delete fails: see ErrReadOnly.
func (s *Store) Delete(ctx context.Context, key string) error {
	return fmt.Errorf("delete %s: %w", key, ErrReadOnly)
}

// Get opens key; see archive.Store.
func (s *Store) Get(ctx context.Context, key string) (io.ReadCloser, error) {
	e, ok := s.entries[key]
	if !ok {
		return nil, fmt.Errorf("%s: %w", key, archive.ErrNotFound)
	}
	return io.NopCloser(io.NewSectionReader(s.f, e.offset, e.size)), nil
}

// GetRange opens a byte range of key; see archive.Store.
func (s *Store) GetRange(ctx context.Context, key string, offset, length int64) (io.ReadCloser, error) {
	e, ok := s.entries[key]
	if !ok {
		return nil, fmt.Errorf("%s: %w", key, archive.ErrNotFound)
	}
	offset = min(max(offset, 0), e.size)
	length = min(length, e.size-offset)
	return io.NopCloser(io.NewSectionReader(s.f, e.offset+offset, length)), nil
}

// Stat describes key; see archive.Store.
func (s *Store) Stat(ctx context.Context, key string) (archive.ObjectInfo, error) {
	e, ok := s.entries[key]
	if !ok {
		return archive.ObjectInfo{}, fmt.Errorf("%s: %w", key, archive.ErrNotFound)
	}
	return e.info, nil
}

// List lists keys under prefix in order; see archive.Store.
func (s *Store) List(ctx context.Context, prefix string, fn func(archive.ObjectInfo) error) error {
	i := sort.SearchStrings(s.keys, prefix)
	for ; i < len(s.keys) && strings.HasPrefix(s.keys[i], prefix); i++ {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := fn(s.entries[s.keys[i]].info); err != nil {
			return err
		}
	}
	return nil
}
