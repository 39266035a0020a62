package s3_test

import (
	"context"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"

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
