// Package memstore is an archive.Store in memory, for tests. It keeps the
// same contract as the real stores (archivetest checks all of them) and
// can be told to fail, to test what the uploader does when a store is down.
package memstore

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/amber-kafka/amber/archive"
)

// Store is an in-memory object store.
type Store struct {
	mu struct {
		sync.Mutex
		objects map[string][]byte
		mod     map[string]time.Time
		fail    error
		puts    int
	}
}

var _ archive.Store = (*Store)(nil)

// New returns an empty store.
func New() *Store {
	s := &Store{}
	s.mu.objects = map[string][]byte{}
	s.mu.mod = map[string]time.Time{}
	return s
}

func (s *Store) String() string { return "mem://" }

// Fail makes every call return err until Fail(nil).
func (s *Store) Fail(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.mu.fail = err
}

// Puts counts successful Put calls.
func (s *Store) Puts() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.mu.puts
}

// Corrupt flips one byte of key at offset, for integrity tests.
func (s *Store) Corrupt(key string, offset int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.mu.objects[key][offset] ^= 0xff
}

func (s *Store) failing() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.mu.fail
}

// Put creates key; see archive.Store.
func (s *Store) Put(ctx context.Context, key string, r io.Reader, size int64) error {
	if err := s.failing(); err != nil {
		return err
	}
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	if size >= 0 && int64(len(b)) != size {
		return fmt.Errorf("put %s: read %d bytes, expected %d", key, len(b), size)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.mu.objects[key]; ok {
		return fmt.Errorf("%s: %w", key, archive.ErrExists)
	}
	s.mu.objects[key] = b
	s.mu.mod[key] = time.Now()
	s.mu.puts++
	return nil
}

func (s *Store) get(key string) ([]byte, error) {
	if err := s.failing(); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	b, ok := s.mu.objects[key]
	if !ok {
		return nil, fmt.Errorf("%s: %w", key, archive.ErrNotFound)
	}
	return b, nil
}

// Get opens key; see archive.Store.
func (s *Store) Get(ctx context.Context, key string) (io.ReadCloser, error) {
	b, err := s.get(key)
	if err != nil {
		return nil, err
	}
	return io.NopCloser(bytes.NewReader(b)), nil
}

// GetRange opens a byte range of key; see archive.Store.
func (s *Store) GetRange(ctx context.Context, key string, offset, length int64) (io.ReadCloser, error) {
	b, err := s.get(key)
	if err != nil {
		return nil, err
	}
	if offset > int64(len(b)) {
		offset = int64(len(b))
	}
	end := min(offset+length, int64(len(b)))
	return io.NopCloser(bytes.NewReader(b[offset:end])), nil
}

// Stat describes key; see archive.Store.
func (s *Store) Stat(ctx context.Context, key string) (archive.ObjectInfo, error) {
	b, err := s.get(key)
	if err != nil {
		return archive.ObjectInfo{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return archive.ObjectInfo{Key: key, Size: int64(len(b)), Modified: s.mu.mod[key]}, nil
}

// List lists keys under prefix in order; see archive.Store.
func (s *Store) List(ctx context.Context, prefix string, fn func(archive.ObjectInfo) error) error {
	if err := s.failing(); err != nil {
		return err
	}
	s.mu.Lock()
	var out []archive.ObjectInfo
	for k, b := range s.mu.objects {
		if strings.HasPrefix(k, prefix) {
			out = append(out, archive.ObjectInfo{Key: k, Size: int64(len(b)), Modified: s.mu.mod[k]})
		}
	}
	s.mu.Unlock()
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	for _, o := range out {
		if err := fn(o); err != nil {
			return err
		}
	}
	return nil
}

// Delete removes key; see archive.Store.
func (s *Store) Delete(ctx context.Context, key string) error {
	if err := s.failing(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.mu.objects, key)
	delete(s.mu.mod, key)
	return nil
}
