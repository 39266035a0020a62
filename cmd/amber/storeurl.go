package main

import (
	"context"
	"errors"
	"fmt"
	"io"
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

// openSource resolves an --archive argument to its store. For a proxy's
// data directory that is DATA/archive, plus its journal opened read-only
// (nil if a running proxy holds it: then a note to stderr says so, ending
// with leftOut, what the command leaves out because of it). The caller
// closes the journal (Close takes a nil one).
func openSource(ctx context.Context, url, leftOut string, stderr io.Writer) (archive.Store, *archive.Journal, error) {
	var j *archive.Journal
	if dir, ok := isDataDir(url); ok {
		url = filepath.Join(dir, "archive")
		var err error
		j, err = archive.OpenJournal(archive.JournalOptions{Dir: filepath.Join(dir, "journal"), ReadOnly: true})
		switch {
		case errors.Is(err, archive.ErrInUse):
			fmt.Fprintln(stderr, "note: a running proxy holds the journal; "+leftOut)
			j = nil
		case err != nil:
			return nil, nil, err
		}
	} else if !strings.Contains(url, "://") || strings.HasPrefix(url, "file://") {
		if _, err := os.Stat(strings.TrimPrefix(url, "file://")); err != nil {
			return nil, nil, fmt.Errorf("no archive at %s: give an archive URL or the data directory of an amber proxy (--data)", url)
		}
	}
	store, err := openStore(ctx, url)
	if err != nil {
		j.Close()
		return nil, nil, err
	}
	return store, j, nil
}

// openArchiveAndJournal is openSource with the archive opened.
func openArchiveAndJournal(ctx context.Context, url string, key *archive.Key, leftOut string, stderr io.Writer) (*archive.Archive, *archive.Journal, error) {
	store, j, err := openSource(ctx, url, leftOut, stderr)
	if err != nil {
		return nil, nil, err
	}
	a, err := archive.OpenArchive(ctx, store, key)
	if err != nil {
		j.Close()
		return nil, nil, err
	}
	return a, j, nil
}
