package testkit

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
)

// MinIO is a real MinIO server process on 127.0.0.1, for S3 tests.
type MinIO struct {
	Endpoint  string // http://127.0.0.1:PORT
	AccessKey string
	SecretKey string
	cmd       *exec.Cmd
	client    *minio.Client
}

// MinIOBinary finds the MinIO server: $AMBER_MINIO, then .tools/bin/minio
// (where scripts/test-deps.sh installs it), then PATH.
func MinIOBinary() (string, bool) {
	if p := os.Getenv("AMBER_MINIO"); p != "" {
		return p, true
	}
	if root, err := RepoRoot(); err == nil {
		p := filepath.Join(root, ".tools", "bin", "minio")
		if _, err := os.Stat(p); err == nil {
			return p, true
		}
	}
	p, err := exec.LookPath("minio")
	return p, err == nil
}

// StartMinIO starts a MinIO server with a fresh data directory and stops
// it when the test ends. Without the binary the test is skipped, or fails
// under CI.
func StartMinIO(t testing.TB) *MinIO {
	t.Helper()
	bin, ok := MinIOBinary()
	if !ok {
		MissingTool(t, "MinIO server not found in .tools/bin or PATH")
	}
	m := &MinIO{AccessKey: "amber-test", SecretKey: "amber-test-secret"}
	api, console := freeAddr(t), freeAddr(t)
	m.Endpoint = "http://" + api
	m.cmd = exec.Command(bin, "server", "--quiet", "--address", api, "--console-address", console, t.TempDir())
	m.cmd.Env = append(os.Environ(), "MINIO_ROOT_USER="+m.AccessKey, "MINIO_ROOT_PASSWORD="+m.SecretKey, "MINIO_BROWSER=off")
	logf, err := os.Create(filepath.Join(t.TempDir(), "minio.log"))
	if err != nil {
		t.Fatal(err)
	}
	m.cmd.Stdout, m.cmd.Stderr = logf, logf
	if err := m.cmd.Start(); err != nil {
		t.Fatalf("start MinIO: %v", err)
	}
	t.Cleanup(func() {
		m.cmd.Process.Signal(syscall.SIGCONT)
		m.cmd.Process.Kill()
		m.cmd.Wait()
		logf.Close()
	})
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get(m.Endpoint + "/minio/health/live")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				break
			}
		}
		if time.Now().After(deadline) {
			b, _ := os.ReadFile(logf.Name())
			t.Fatalf("MinIO not ready after 30 s: %v\n%s", err, b)
		}
		time.Sleep(50 * time.Millisecond)
	}
	m.client, err = minio.New(api, &minio.Options{Creds: credentials.NewStaticV4(m.AccessKey, m.SecretKey, "")})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func freeAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// MakeBucket creates a bucket, with object lock (and so versioning) if
// asked.
func (m *MinIO) MakeBucket(t testing.TB, name string, objectLock bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := m.client.MakeBucket(ctx, name, minio.MakeBucketOptions{ObjectLocking: objectLock}); err != nil {
		t.Fatalf("make bucket %s: %v", name, err)
	}
}

// Stop freezes the server (SIGSTOP): connections hang, as with a store
// that stops answering. Cont resumes it.
func (m *MinIO) Stop() { m.cmd.Process.Signal(syscall.SIGSTOP) }

// Cont resumes a stopped server.
func (m *MinIO) Cont() { m.cmd.Process.Signal(syscall.SIGCONT) }

// URL is the archive URL of bucket/prefix on this server.
func (m *MinIO) URL(bucket, prefix string) string {
	return fmt.Sprintf("s3://%s/%s?endpoint=%s", bucket, prefix, m.Endpoint)
}

// Env is the environment the S3 store reads credentials from.
func (m *MinIO) Env() map[string]string {
	return map[string]string{"AWS_ACCESS_KEY_ID": m.AccessKey, "AWS_SECRET_ACCESS_KEY": m.SecretKey, "AWS_REGION": "us-east-1"}
}
