// Package archivetest holds the contract every archive.Store must keep,
// run against each backend: memory, a directory, and S3 on a real MinIO.
package archivetest

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"sync"
	"testing"
	"time"

	"github.com/amber-kafka/amber/archive"
)

// RunStoreTests runs the Store contract against stores made by newStore;
// each subtest gets a fresh, empty store.
func RunStoreTests(t *testing.T, newStore func(t *testing.T) archive.Store) {
	ctx := func(t *testing.T) context.Context {
		c, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		t.Cleanup(cancel)
		return c
	}
	put := func(t *testing.T, s archive.Store, key string, b []byte) {
		t.Helper()
		if err := s.Put(ctx(t), key, bytes.NewReader(b), int64(len(b))); err != nil {
			t.Fatalf("put %s: %v", key, err)
		}
	}
	get := func(t *testing.T, s archive.Store, key string) []byte {
		t.Helper()
		rc, err := s.Get(ctx(t), key)
		if err != nil {
			t.Fatalf("get %s: %v", key, err)
		}
		defer rc.Close()
		b, err := io.ReadAll(rc)
		if err != nil {
			t.Fatalf("read %s: %v", key, err)
		}
		return b
	}

	t.Run("PutGet", func(t *testing.T) {
		s := newStore(t)
		put(t, s, "v1/a/one", []byte("hello"))
		if got := get(t, s, "v1/a/one"); string(got) != "hello" {
			t.Fatalf("got %q", got)
		}
		info, err := s.Stat(ctx(t), "v1/a/one")
		if err != nil || info.Size != 5 || info.Key != "v1/a/one" {
			t.Fatalf("stat = %+v, %v", info, err)
		}
	})

	t.Run("NeverOverwrites", func(t *testing.T) {
		s := newStore(t)
		put(t, s, "k", []byte("first"))
		err := s.Put(ctx(t), "k", bytes.NewReader([]byte("second")), 6)
		if !errors.Is(err, archive.ErrExists) {
			t.Fatalf("second put = %v, want ErrExists", err)
		}
		if got := get(t, s, "k"); string(got) != "first" {
			t.Fatalf("object changed to %q", got)
		}
	})

	t.Run("ConcurrentPutsOneWins", func(t *testing.T) {
		s := newStore(t)
		var wg sync.WaitGroup
		errs := make([]error, 8)
		for i := range errs {
			wg.Add(1)
			go func() {
				defer wg.Done()
				b := []byte(fmt.Sprintf("writer %d", i))
				errs[i] = s.Put(ctx(t), "race", bytes.NewReader(b), int64(len(b)))
			}()
		}
		wg.Wait()
		won := 0
		for _, err := range errs {
			switch {
			case err == nil:
				won++
			case !errors.Is(err, archive.ErrExists):
				t.Errorf("put: %v", err)
			}
		}
		if won != 1 {
			t.Fatalf("%d puts of one key succeeded, want 1", won)
		}
	})

	t.Run("NotFound", func(t *testing.T) {
		s := newStore(t)
		if _, err := s.Get(ctx(t), "missing"); !errors.Is(err, archive.ErrNotFound) {
			t.Errorf("get: %v", err)
		}
		if _, err := s.GetRange(ctx(t), "missing", 0, 1); !errors.Is(err, archive.ErrNotFound) {
			t.Errorf("get range: %v", err)
		}
		if _, err := s.Stat(ctx(t), "missing"); !errors.Is(err, archive.ErrNotFound) {
			t.Errorf("stat: %v", err)
		}
		if err := s.Delete(ctx(t), "missing"); err != nil {
			t.Errorf("delete missing: %v", err)
		}
	})

	t.Run("GetRange", func(t *testing.T) {
		s := newStore(t)
		put(t, s, "r", []byte("0123456789"))
		rc, err := s.GetRange(ctx(t), "r", 3, 4)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(rc)
		rc.Close()
		if string(b) != "3456" {
			t.Fatalf("range = %q, want 3456", b)
		}
	})

	t.Run("ListInOrderUnderPrefix", func(t *testing.T) {
		s := newStore(t)
		for _, k := range []string{"v1/seg/b/2", "v1/seg/a/1", "v1/idx/a/1", "v1/seg/a/10", "other"} {
			put(t, s, k, []byte(k))
		}
		var got []string
		if err := s.List(ctx(t), "v1/seg/", func(o archive.ObjectInfo) error {
			if o.Size != int64(len(o.Key)) {
				t.Errorf("%s: size %d", o.Key, o.Size)
			}
			got = append(got, o.Key)
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		if fmt.Sprint(got) != "[v1/seg/a/1 v1/seg/a/10 v1/seg/b/2]" {
			t.Fatalf("list = %v", got)
		}
	})

	t.Run("Delete", func(t *testing.T) {
		s := newStore(t)
		put(t, s, "d", []byte("x"))
		if err := s.Delete(ctx(t), "d"); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Get(ctx(t), "d"); !errors.Is(err, archive.ErrNotFound) {
			t.Fatalf("after delete: %v", err)
		}
	})

	t.Run("LargeObject", func(t *testing.T) {
		s := newStore(t)
		b := make([]byte, 24<<20) // past S3 multipart thresholds
		rand.Read(b)
		put(t, s, "large", b)
		if got := get(t, s, "large"); !bytes.Equal(got, b) {
			t.Fatalf("large object differs (%d bytes back)", len(got))
		}
	})
}
