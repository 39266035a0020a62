package s3_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/minio/minio-go/v7"

	"github.com/amber-kafka/amber/archive"
	"github.com/amber-kafka/amber/archive/archivetest"
	"github.com/amber-kafka/amber/archive/s3"
	"github.com/amber-kafka/amber/internal/testkit"
)

func newStore(t *testing.T, m *testkit.MinIO, bucket, prefix string) *s3.Store {
	t.Helper()
	o, err := s3.ParseURL(m.URL(bucket, prefix), func(k string) string { return m.Env()[k] })
	if err != nil {
		t.Fatal(err)
	}
	s, err := s3.New(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestStoreContract runs the Store contract on a real MinIO, in a bucket
// with object lock (so versioning) as production archives use.
func TestStoreContract(t *testing.T) {
	m := testkit.StartMinIO(t)
	m.MakeBucket(t, "archive", true)
	var n atomic.Int64
	archivetest.RunStoreTests(t, func(t *testing.T) archive.Store {
		return newStore(t, m, "archive", fmt.Sprintf("contract-%d", n.Add(1)))
	})
}

// TestClearErrors: a missing bucket and wrong credentials are reported at
// start, saying what to fix.
func TestClearErrors(t *testing.T) {
	m := testkit.StartMinIO(t)
	m.MakeBucket(t, "exists", false)
	o, _ := s3.ParseURL(m.URL("nope", "p"), func(k string) string { return m.Env()[k] })
	if _, err := s3.New(context.Background(), o); err == nil || !strings.Contains(err.Error(), `bucket "nope" does not exist`) {
		t.Errorf("missing bucket: %v", err)
	}
	o, _ = s3.ParseURL(m.URL("exists", "p"), func(k string) string {
		if k == "AWS_SECRET_ACCESS_KEY" {
			return "wrong"
		}
		return m.Env()[k]
	})
	if _, err := s3.New(context.Background(), o); err == nil || !strings.Contains(err.Error(), "AWS_SECRET_ACCESS_KEY") {
		t.Errorf("wrong secret: %v", err)
	}
	o, _ = s3.ParseURL(m.URL("exists", "p"), func(k string) string {
		if strings.HasPrefix(k, "AWS_ACCESS") || strings.HasPrefix(k, "AWS_SECRET") {
			return ""
		}
		return m.Env()[k]
	})
	if _, err := s3.New(context.Background(), o); err == nil {
		t.Error("no credentials: no error")
	} else {
		t.Logf("no credentials: %v", err)
	}
}

// TestChecksummedPutUnderRetention: in a bucket with object lock and a
// default retention (where S3 requires every PUT to carry a checksum),
// Put stores each object with its CRC32C (or, with ?checksum=md5, a
// Content-MD5), under retention, and still refuses to overwrite it.
func TestChecksummedPutUnderRetention(t *testing.T) {
	m := testkit.StartMinIO(t)
	m.MakeBucket(t, "retained", true)
	ctx := context.Background()
	for i, q := range []string{"", "&checksum=md5"} {
		o, err := s3.ParseURL(m.URL("retained", fmt.Sprint("p", i))+q, func(k string) string { return m.Env()[k] })
		if err != nil {
			t.Fatal(err)
		}
		s, err := s3.New(ctx, o)
		if err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			mode, days, unit := minio.Governance, uint(1), minio.Days
			if err := s.Client().SetObjectLockConfig(ctx, "retained", &mode, &days, &unit); err != nil {
				t.Fatal(err)
			}
		}
		body := bytes.Repeat([]byte("amber "), 100_000)
		if err := s.Put(ctx, "v1/seg/x", bytes.NewReader(body), int64(len(body))); err != nil {
			t.Fatalf("put%s: %v", q, err)
		}
		info, err := s.Client().StatObject(ctx, "retained", o.Prefix+"/v1/seg/x", minio.StatObjectOptions{Checksum: true})
		if err != nil {
			t.Fatal(err)
		}
		crc := binary.BigEndian.AppendUint32(nil, crc32.Checksum(body, crc32.MakeTable(crc32.Castagnoli)))
		if want := base64.StdEncoding.EncodeToString(crc); q == "" && info.ChecksumCRC32C != want {
			t.Errorf("stored CRC32C %q, want %q", info.ChecksumCRC32C, want)
		}
		if _, until, err := s.Client().GetObjectRetention(ctx, "retained", o.Prefix+"/v1/seg/x", ""); err != nil || until == nil {
			t.Errorf("put%s: retention %v, %v; want the bucket's default", q, until, err)
		}
		if err := s.Put(ctx, "v1/seg/x", bytes.NewReader([]byte("other")), 5); !errors.Is(err, archive.ErrExists) {
			t.Errorf("second put%s: %v, want ErrExists", q, err)
		}
		if n, err := s.Versions(ctx, "v1/seg/x"); err != nil || n != 1 {
			t.Errorf("put%s: %d versions (%v), want 1", q, n, err)
		}
	}
	// A segment handed over with its SHA-256 is sent with it as its
	// checksum: the store checks the body against it, keeps it and the
	// retention, and still refuses a second PUT.
	o, _ := s3.ParseURL(m.URL("retained", "hashed"), func(k string) string { return m.Env()[k] })
	s, err := s3.New(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	body := bytes.Repeat([]byte("segment "), 200_000)
	hashed := func(b []byte, sum [32]byte) *archive.HashedReader {
		return &archive.HashedReader{Reader: bytes.NewReader(b), SHA256: sum}
	}
	if err := s.Put(ctx, "v1/seg/bad", hashed(body, sha256.Sum256([]byte("other"))), int64(len(body))); err == nil {
		t.Error("put with a wrong SHA-256 accepted")
	}
	if _, err := s.Stat(ctx, "v1/seg/bad"); !errors.Is(err, archive.ErrNotFound) {
		t.Errorf("after a put with a wrong SHA-256: stat %v, want not found", err)
	}
	if err := s.Put(ctx, "v1/seg/h", hashed(body, sha256.Sum256(body)), int64(len(body))); err != nil {
		t.Fatalf("hashed put: %v", err)
	}
	info, err := s.Client().StatObject(ctx, "retained", "hashed/v1/seg/h", minio.StatObjectOptions{Checksum: true})
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(body)
	if want := base64.StdEncoding.EncodeToString(sum[:]); info.ChecksumSHA256 != want || info.Size != int64(len(body)) {
		t.Errorf("hashed put: SHA-256 %q, size %d; want %q, %d", info.ChecksumSHA256, info.Size, want, len(body))
	}
	if _, until, err := s.Client().GetObjectRetention(ctx, "retained", "hashed/v1/seg/h", ""); err != nil || until == nil {
		t.Errorf("hashed put: retention %v, %v", until, err)
	}
	if got := readAll(t, s, "v1/seg/h"); !bytes.Equal(got, body) {
		t.Errorf("hashed put: read back %d bytes, want the %d put", len(got), len(body))
	}
	other := bytes.Repeat([]byte("x"), 10)
	if err := s.Put(ctx, "v1/seg/h", hashed(other, sha256.Sum256(other)), int64(len(other))); !errors.Is(err, archive.ErrExists) {
		t.Errorf("second hashed put: %v, want ErrExists", err)
	}

	if _, err := s3.ParseURL("s3://b/p?checksum=sha1", func(string) string { return "" }); err == nil {
		t.Error("checksum=sha1 accepted")
	}
}

func readAll(t *testing.T, s *s3.Store, key string) []byte {
	t.Helper()
	rc, err := s.Get(context.Background(), key)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
