package archive

import (
	"context"
	"errors"
	"io"
	"time"
)

// Store is where archive objects live: an S3 bucket prefix (archive/s3), a
// directory (archive/file), or memory (tests). Objects are written once and
// never changed; only prune deletes.
//
// Keys are slash-separated relative paths ("v1/seg/<writer>/<seq>.seg").
// Every method is safe for concurrent use.
type Store interface {
	// Put creates the object key with size bytes from r. If key exists,
	// Put writes nothing and returns an error matching ErrExists: an
	// object is never overwritten, so an archive in a bucket with object
	// lock and versioning keeps one version per key.
	Put(ctx context.Context, key string, r io.Reader, size int64) error
	// Get opens the object for reading; ErrNotFound if absent.
	Get(ctx context.Context, key string) (io.ReadCloser, error)
	// GetRange opens length bytes at offset; ErrNotFound if absent.
	GetRange(ctx context.Context, key string, offset, length int64) (io.ReadCloser, error)
	// Stat returns the object's size; ErrNotFound if absent.
	Stat(ctx context.Context, key string) (ObjectInfo, error)
	// List calls fn for every object whose key starts with prefix, in key
	// order.
	List(ctx context.Context, prefix string, fn func(ObjectInfo) error) error
	// Delete removes the object. Deleting an absent object is not an
	// error. An object the store will not delete yet (S3 object lock
	// retention) returns an error matching ErrLocked.
	Delete(ctx context.Context, key string) error
	// String names the store for messages: s3://bucket/prefix, file:///dir.
	String() string
}

// ObjectInfo describes one stored object.
type ObjectInfo struct {
	Key      string
	Size     int64
	Modified time.Time
}

var (
	// ErrNotFound is returned for an object that does not exist.
	ErrNotFound = errors.New("object not found")
	// ErrExists is returned by Put for an object that already exists.
	ErrExists = errors.New("object already exists")
	// ErrLocked is returned by Delete for an object under retention.
	ErrLocked = errors.New("object locked")
)
