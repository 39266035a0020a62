package archivebench

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/amber-kafka/amber/archive/s3"
)

// ErrNoMinIO is returned when no MinIO server binary can be found.
var ErrNoMinIO = errors.New("MinIO server binary not found: set $AMBER_MINIO or -minio, or install it into .tools/bin with scripts/test-deps.sh")

// FindMinIO finds the MinIO server binary: $AMBER_MINIO, then
// .tools/bin/minio in the repository holding the working directory, then
// PATH.
func FindMinIO() (string, error) {
	if p := os.Getenv("AMBER_MINIO"); p != "" {
		return p, nil
	}
	if wd, err := os.Getwd(); err == nil {
		for d := wd; ; d = filepath.Dir(d) {
			if b, err := os.ReadFile(filepath.Join(d, "go.mod")); err == nil && bytes.Contains(b, []byte("module github.com/amber-kafka/amber\n")) {
				p := filepath.Join(d, ".tools", "bin", "minio")
				if _, err := os.Stat(p); err == nil {
					return p, nil
				}
				break
			}
			if filepath.Dir(d) == d {
				break
			}
		}
	}
	if p, err := exec.LookPath("minio"); err == nil {
		return p, nil
	}
	return "", ErrNoMinIO
}

// MinIO is a MinIO server process on 127.0.0.1 with a fresh data
// directory, modelled on internal/testkit's runner (which needs a
// testing.TB).
type MinIO struct {
	Endpoint  string // http://127.0.0.1:PORT
	AccessKey string
	SecretKey string
	Client    *minio.Client

	cmd *exec.Cmd
	dir string
	log *os.File
}

// StartMinIO starts bin (FindMinIO if empty) with its data in a new
// directory under dir and waits until it is ready.
func StartMinIO(ctx context.Context, bin, dir string) (*MinIO, error) {
	if bin == "" {
		var err error
		if bin, err = FindMinIO(); err != nil {
			return nil, err
		}
	}
	d, err := os.MkdirTemp(dir, "archivebench-minio-")
	if err != nil {
		return nil, err
	}
	m := &MinIO{AccessKey: "amber-bench", SecretKey: "amber-bench-secret", dir: d}
	api, err := freeAddr()
	if err != nil {
		os.RemoveAll(d)
		return nil, err
	}
	console, err := freeAddr()
	if err != nil {
		os.RemoveAll(d)
		return nil, err
	}
	m.Endpoint = "http://" + api
	m.cmd = exec.Command(bin, "server", "--quiet", "--address", api, "--console-address", console, filepath.Join(d, "data"))
	m.cmd.Env = append(os.Environ(), "MINIO_ROOT_USER="+m.AccessKey, "MINIO_ROOT_PASSWORD="+m.SecretKey, "MINIO_BROWSER=off")
	if m.log, err = os.Create(filepath.Join(d, "minio.log")); err != nil {
		os.RemoveAll(d)
		return nil, err
	}
	m.cmd.Stdout, m.cmd.Stderr = m.log, m.log
	if err := m.cmd.Start(); err != nil {
		m.log.Close()
		os.RemoveAll(d)
		return nil, fmt.Errorf("start MinIO %s: %w", bin, err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get(m.Endpoint + "/minio/health/live")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			b, _ := os.ReadFile(m.log.Name())
			m.Close()
			return nil, fmt.Errorf("MinIO not ready after 30 s: %v\n%s", err, b)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if m.Client, err = minio.New(api, &minio.Options{Creds: credentials.NewStaticV4(m.AccessKey, m.SecretKey, "")}); err != nil {
		m.Close()
		return nil, err
	}
	return m, nil
}

// Pid is the server's process id.
func (m *MinIO) Pid() int { return m.cmd.Process.Pid }

// MakeBucket creates a bucket without object lock.
func (m *MinIO) MakeBucket(ctx context.Context, name string) error {
	if err := m.Client.MakeBucket(ctx, name, minio.MakeBucketOptions{}); err != nil {
		return fmt.Errorf("make bucket %s: %w", name, err)
	}
	return nil
}

// Store is an archive/s3 store on bucket/prefix of this server, reached
// as amber proxy --archive s3://bucket/prefix?endpoint=... would.
func (m *MinIO) Store(ctx context.Context, bucket, prefix string) (*s3.Store, error) {
	env := map[string]string{"AWS_ACCESS_KEY_ID": m.AccessKey, "AWS_SECRET_ACCESS_KEY": m.SecretKey, "AWS_REGION": "us-east-1"}
	o, err := s3.ParseURL(fmt.Sprintf("s3://%s/%s?endpoint=%s", bucket, prefix, m.Endpoint), func(k string) string { return env[k] })
	if err != nil {
		return nil, err
	}
	return s3.New(ctx, o)
}

// RemovePrefix deletes every object under prefix in bucket.
func (m *MinIO) RemovePrefix(ctx context.Context, bucket, prefix string) error {
	objs := m.Client.ListObjects(ctx, bucket, minio.ListObjectsOptions{Prefix: prefix, Recursive: true})
	var errs []error
	for e := range m.Client.RemoveObjects(ctx, bucket, objs, minio.RemoveObjectsOptions{}) {
		errs = append(errs, e.Err)
	}
	return errors.Join(errs...)
}

// Close stops the server and removes its data.
func (m *MinIO) Close() error {
	if m.cmd.Process != nil {
		m.cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { m.cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			m.cmd.Process.Kill()
			<-done
		}
	}
	m.log.Close()
	return os.RemoveAll(m.dir)
}

// freeAddr is a 127.0.0.1 address with a port free a moment ago.
func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}
