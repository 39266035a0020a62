package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"

	"github.com/amber-kafka/amber/archive"
	"github.com/amber-kafka/amber/archive/file"
	"github.com/amber-kafka/amber/archive/s3"
	"github.com/amber-kafka/amber/archive/tarfile"
)

// openStore opens an --archive URL: s3://bucket/prefix (endpoint,
// credentials and region from the AWS_* environment or the URL's query),
// file:///dir, or a bare path.
func openStore(ctx context.Context, url string) (archive.Store, error) {
	if strings.HasPrefix(url, "s3://") {
		o, err := s3.ParseURL(url, os.Getenv)
		if err != nil {
			return nil, usageError{err}
		}
		return s3.New(ctx, o)
	}
	if strings.Contains(url, "://") && !strings.HasPrefix(url, "file://") {
		return nil, usagef("archive URL %q: want s3://bucket/prefix, file:///dir, a path, or an export's .tar", url)
	}
	if strings.HasSuffix(url, ".tar") {
		return tarfile.Open(strings.TrimPrefix(url, "file://")) // an export written with --tar, read in place
	}
	return file.New(strings.TrimPrefix(url, "file://"))
}

// loadKey reads --encryption-key-file, if given.
func loadKey(path string) (*archive.Key, error) {
	if path == "" {
		return nil, nil
	}
	return archive.LoadKey(path)
}

// isDataDir reports whether path (an --archive argument) is a proxy's
// data directory rather than an archive: it holds a journal.
func isDataDir(url string) (string, bool) {
	if strings.Contains(url, "://") && !strings.HasPrefix(url, "file://") {
		return "", false
	}
	dir := strings.TrimPrefix(url, "file://")
	if fi, err := os.Stat(filepath.Join(dir, "journal")); err == nil && fi.IsDir() {
		return dir, true
	}
	return "", false
}
