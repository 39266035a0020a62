// Package s3 is an archive.Store in an S3 bucket (AWS S3, MinIO or any
// S3-compatible store), through minio-go.
//
//	s3://bucket/prefix?endpoint=http://minio:9000&region=us-east-1
//
// The endpoint comes from ?endpoint= or AWS_ENDPOINT_URL (default AWS);
// credentials from AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and
// AWS_SESSION_TOKEN, else the shared credentials file, else the instance
// role; the region from ?region= or AWS_REGION. Custom endpoints use
// path-style addressing.
//
// Put is a conditional PUT (If-None-Match: *), so an object is never
// overwritten: in a bucket with versioning and object lock each key keeps
// one version. Objects are sent in one PUT with a CRC32C checksum
// (x-amz-checksum-crc32c, sent as a trailer), which the store verifies and
// keeps with the object and which object lock accepts in place of a
// Content-MD5. A store that does not take trailing checksums (older
// S3-compatible servers) can be given a Content-MD5 instead with
// ?checksum=md5; MD5 costs about 1.5 CPU seconds per GB uploaded, CRC32C
// almost nothing. A segment the uploader hands over with its SHA-256
// (archive.HashedReader) goes with that hash as its checksum
// (x-amz-checksum-sha256, a signed header the store verifies the body
// against) and is not hashed again.
package s3

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path"
	"strings"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/amber-kafka/amber/archive"
)

// Options locate a bucket prefix and say how to reach it.
type Options struct {
	// Endpoint is host:port or a URL; "" means AWS S3.
	Endpoint string
	Bucket   string
	// Prefix is prepended to every key (no leading or trailing slash).
	Prefix string
	Region string
	// AccessKey, SecretKey, SessionToken; when AccessKey is empty the usual
	// chain (environment, shared file, instance role) is used.
	AccessKey, SecretKey, SessionToken string
	// Transport overrides the HTTP transport (custom CAs, tests).
	Transport http.RoundTripper
	// ContentMD5 sends every object with a Content-MD5 instead of a
	// trailing CRC32C checksum, for stores that do not take trailing
	// checksums (?checksum=md5).
	ContentMD5 bool
}

// ParseURL parses s3://bucket/prefix?endpoint=...&region=...&checksum=...,
// taking what the URL lacks from the AWS_* environment variables through
// getenv. checksum is crc32c (the default) or md5.
func ParseURL(raw string, getenv func(string) string) (Options, error) {
	u, err := url.Parse(raw)
	if err != nil || u.Scheme != "s3" || u.Host == "" {
		return Options{}, fmt.Errorf("archive URL %q: want s3://bucket/prefix", raw)
	}
	o := Options{
		Bucket:       u.Host,
		Prefix:       strings.Trim(u.Path, "/"),
		Endpoint:     u.Query().Get("endpoint"),
		Region:       u.Query().Get("region"),
		AccessKey:    getenv("AWS_ACCESS_KEY_ID"),
		SecretKey:    getenv("AWS_SECRET_ACCESS_KEY"),
		SessionToken: getenv("AWS_SESSION_TOKEN"),
	}
	switch c := strings.ToLower(u.Query().Get("checksum")); c {
	case "", "crc32c":
	case "md5":
		o.ContentMD5 = true
	default:
		return Options{}, fmt.Errorf("archive URL %q: checksum %q: want crc32c or md5", raw, c)
	}
	if o.Endpoint == "" {
		o.Endpoint = getenv("AWS_ENDPOINT_URL")
	}
	if o.Region == "" {
		o.Region = getenv("AWS_REGION")
	}
	return o, nil
}

// Store is a bucket prefix.
type Store struct {
	c      *minio.Client
	bucket string
	prefix string
	name   string
	md5    bool
}

var _ archive.Store = (*Store)(nil)

// New connects to the bucket and checks that it exists and the credentials
// work, so that a misconfiguration is reported at start with what to fix.
func New(ctx context.Context, o Options) (*Store, error) {
	host, secure, custom := "s3.amazonaws.com", true, false
	if o.Endpoint != "" {
		custom = true
		host = o.Endpoint
		if u, err := url.Parse(o.Endpoint); err == nil && u.Host != "" {
			host, secure = u.Host, u.Scheme == "https"
		}
	}
	var creds *credentials.Credentials
	if o.AccessKey != "" {
		creds = credentials.NewStaticV4(o.AccessKey, o.SecretKey, o.SessionToken)
	} else {
		creds = credentials.NewChainCredentials([]credentials.Provider{
			&credentials.EnvAWS{}, &credentials.FileAWSCredentials{}, &credentials.IAM{},
		})
	}
	// TrailingHeaders lets minio-go send the CRC32C checksum it computes
	// while streaming the body as a trailer: one pass over the bytes.
	mo := &minio.Options{Creds: creds, Secure: secure, Region: o.Region, Transport: o.Transport, TrailingHeaders: !o.ContentMD5}
	if custom {
		mo.BucketLookup = minio.BucketLookupPath
	}
	c, err := minio.New(host, mo)
	if err != nil {
		return nil, fmt.Errorf("s3 client for %s: %w", host, err)
	}
	s := &Store{c: c, bucket: o.Bucket, prefix: strings.Trim(o.Prefix, "/"), name: "s3://" + path.Join(o.Bucket, o.Prefix), md5: o.ContentMD5}
	cctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	ok, err := c.BucketExists(cctx, o.Bucket)
	if err != nil {
		if v, cerr := creds.GetWithContext(nil); cerr != nil || v.AccessKeyID == "" {
			return nil, fmt.Errorf("%s at %s: no credentials found: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or provide a shared credentials file or an instance role: %w", s.name, host, s.explain(err))
		}
		return nil, fmt.Errorf("%s at %s: %w", s.name, host, s.explain(err))
	}
	if !ok {
		return nil, fmt.Errorf("%s at %s: bucket %q does not exist: create it (with object lock enabled if the archive must be immutable) or fix the URL", s.name, host, o.Bucket)
	}
	return s, nil
}

func (s *Store) String() string { return s.name }

func (s *Store) key(k string) string {
	if s.prefix == "" {
		return k
	}
	return s.prefix + "/" + k
}

// explain maps S3 error codes to the archive's sentinels and adds what to
// do about credential and permission problems.
func (s *Store) explain(err error) error {
	if err == nil {
		return nil
	}
	er := minio.ToErrorResponse(err)
	if msg := strings.ToLower(er.Message); er.Code == "ObjectLocked" || strings.Contains(msg, "worm") ||
		(er.Code == "AccessDenied" && (strings.Contains(msg, "retention") || strings.Contains(msg, "object lock"))) {
		return fmt.Errorf("%w: %v", archive.ErrLocked, err)
	}
	switch er.Code {
	case "NoSuchKey":
		return fmt.Errorf("%w: %s", archive.ErrNotFound, er.Key)
	case "PreconditionFailed":
		return fmt.Errorf("%w: %v", archive.ErrExists, err)
	case "InvalidAccessKeyId", "SignatureDoesNotMatch":
		return fmt.Errorf("%v: check AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY", err)
	case "NoSuchBucket":
		return fmt.Errorf("%v: create bucket %q or fix the archive URL", err, s.bucket)
	case "AccessDenied":
		return fmt.Errorf("%v: the credentials lack permission on bucket %q", err, s.bucket)
	}
	if er.StatusCode == http.StatusNotFound {
		return fmt.Errorf("%w: %v", archive.ErrNotFound, err)
	}
	return err
}

// Put creates key; see archive.Store.
func (s *Store) Put(ctx context.Context, key string, r io.Reader, size int64) error {
	// One PUT with a checksum (object lock requires one): CRC32C, or
	// Content-MD5 for stores without trailing checksums; the archive's
	// objects are bounded in size, so buffering is fine.
	if h, ok := r.(*archive.HashedReader); ok && !s.md5 && size == int64(h.Len()) && size > 0 {
		return s.putHashed(ctx, key, h)
	}
	b, ok := r.(*bytes.Reader)
	if !ok || size < 0 {
		buf, err := io.ReadAll(r)
		if err != nil {
			return err
		}
		b, size = bytes.NewReader(buf), int64(len(buf))
	}
	opts := PutOptions(s.md5)
	_, err := s.c.PutObject(ctx, s.bucket, s.key(key), b, size, opts)
	return s.explain(err)
}

// putHashed is Put of bytes whose SHA-256 the caller knows (a segment,
// hashed for its index): the hash goes in an x-amz-checksum-sha256
// header, which is signed with the request and which the store checks
// the body against, and the body itself is sent unsigned. That is as
// safe as a signed payload, and the bytes are hashed once, by the
// store, instead of again by minio-go, whose streaming signature over
// plain HTTP hashes every 64 KiB chunk, or whose trailer adds a CRC32C.
func (s *Store) putHashed(ctx context.Context, key string, h *archive.HashedReader) error {
	opts := minio.PutObjectOptions{ContentType: "application/octet-stream", DisableContentSha256: true, UserMetadata: map[string]string{
		"X-Amz-Checksum-Sha256":    base64.StdEncoding.EncodeToString(h.SHA256[:]),
		"X-Amz-Checksum-Algorithm": "SHA256",
	}}
	opts.SetMatchETagExcept("*")
	_, err := minio.Core{Client: s.c}.PutObject(ctx, s.bucket, s.key(key), h, int64(h.Len()), "", "", opts)
	return s.explain(err)
}

// PutOptions are the options Put writes an object with: one PUT, a
// CRC32C checksum (Content-MD5 if md5), If-None-Match: *. A client needs
// minio.Options.TrailingHeaders for the checksum. Exported for the upload
// benchmark, which writes the same objects with PutObject to compare.
func PutOptions(md5 bool) minio.PutObjectOptions {
	opts := minio.PutObjectOptions{DisableMultipart: true, ContentType: "application/octet-stream"}
	if md5 {
		opts.SendContentMd5 = true
	} else {
		opts.Checksum = minio.ChecksumCRC32C
	}
	opts.SetMatchETagExcept("*")
	return opts
}

// Get opens key; see archive.Store.
func (s *Store) Get(ctx context.Context, key string) (io.ReadCloser, error) {
	return s.get(ctx, key, minio.GetObjectOptions{})
}

// GetRange opens a byte range of key; see archive.Store.
func (s *Store) GetRange(ctx context.Context, key string, offset, length int64) (io.ReadCloser, error) {
	var opts minio.GetObjectOptions
	if length <= 0 {
		return io.NopCloser(bytes.NewReader(nil)), nil
	}
	if err := opts.SetRange(offset, offset+length-1); err != nil {
		return nil, err
	}
	return s.get(ctx, key, opts)
}

func (s *Store) get(ctx context.Context, key string, opts minio.GetObjectOptions) (io.ReadCloser, error) {
	obj, err := s.c.GetObject(ctx, s.bucket, s.key(key), opts)
	if err != nil {
		return nil, s.explain(err)
	}
	// GetObject is lazy: Stat makes the request, so a missing object is
	// reported here rather than on the first Read.
	if _, err := obj.Stat(); err != nil {
		obj.Close()
		return nil, s.explain(err)
	}
	return obj, nil
}

// Stat describes key; see archive.Store.
func (s *Store) Stat(ctx context.Context, key string) (archive.ObjectInfo, error) {
	info, err := s.c.StatObject(ctx, s.bucket, s.key(key), minio.StatObjectOptions{})
	if err != nil {
		return archive.ObjectInfo{}, s.explain(err)
	}
	return archive.ObjectInfo{Key: key, Size: info.Size, Modified: info.LastModified}, nil
}

// List lists keys under prefix in order; see archive.Store.
func (s *Store) List(ctx context.Context, prefix string, fn func(archive.ObjectInfo) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	for obj := range s.c.ListObjects(ctx, s.bucket, minio.ListObjectsOptions{Prefix: s.key(prefix), Recursive: true}) {
		if obj.Err != nil {
			return s.explain(obj.Err)
		}
		key := obj.Key
		if s.prefix != "" {
			key = strings.TrimPrefix(key, s.prefix+"/")
		}
		if err := fn(archive.ObjectInfo{Key: key, Size: obj.Size, Modified: obj.LastModified}); err != nil {
			return err
		}
	}
	return nil
}

// Delete removes key, every version of it in a versioned bucket; an object
// under object-lock retention returns ErrLocked. See archive.Store.
func (s *Store) Delete(ctx context.Context, key string) error {
	var versions []string
	for obj := range s.c.ListObjects(ctx, s.bucket, minio.ListObjectsOptions{Prefix: s.key(key), WithVersions: true}) {
		if obj.Err != nil {
			return s.explain(obj.Err)
		}
		if obj.Key == s.key(key) {
			versions = append(versions, obj.VersionID)
		}
	}
	var errs []error
	for _, v := range versions {
		if err := s.c.RemoveObject(ctx, s.bucket, s.key(key), minio.RemoveObjectOptions{VersionID: v}); err != nil {
			errs = append(errs, s.explain(err))
		}
	}
	return errors.Join(errs...)
}

// Versions counts the versions of key, for tests that check nothing was
// ever overwritten.
func (s *Store) Versions(ctx context.Context, key string) (int, error) {
	n := 0
	for obj := range s.c.ListObjects(ctx, s.bucket, minio.ListObjectsOptions{Prefix: s.key(key), WithVersions: true}) {
		if obj.Err != nil {
			return 0, s.explain(obj.Err)
		}
		if obj.Key == s.key(key) {
			n++
		}
	}
	return n, nil
}

// Client is the underlying minio client, for tests that make buckets.
func (s *Store) Client() *minio.Client { return s.c }

// Getenv is os.Getenv, for ParseURL.
var Getenv = os.Getenv
