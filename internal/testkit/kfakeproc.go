package testkit

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sync"
	"syscall"
	"testing"
	"time"
)

// KfakeProcess is a kfake cluster running as its own process (the command in
// internal/testkit/cmd/kfake).
type KfakeProcess struct {
	// Addrs are the brokers' listen addresses, as the process printed them.
	Addrs []string
	Cmd   *exec.Cmd

	stderr *syncBuffer
}

// Stderr returns what the process wrote on stderr so far.
func (k *KfakeProcess) Stderr() string { return k.stderr.String() }

// StartKfakeProcess builds (once per content, cached in .tools/testkit-bin)
// and starts the standalone kfake command with args (see its -help: -brokers,
// -ports, -seed-topic, -data-dir, -broker-config, -blackhole-produce, ...),
// waits for its ready line and stops it with SIGTERM when the test ends.
func StartKfakeProcess(t testing.TB, args ...string) *KfakeProcess {
	t.Helper()
	bin, err := KfakeBinary()
	if err != nil {
		t.Fatalf("build kfake command: %v", err)
	}

	cmd := exec.Command(bin, args...)
	k := &KfakeProcess{Cmd: cmd, stderr: new(syncBuffer)}
	readyc := make(chan string, 1)
	cmd.Stdout = &firstLineWriter{c: readyc}
	cmd.Stderr = k.stderr
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", bin, err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()

	select {
	case line := <-readyc:
		var msg struct {
			Addrs []string `json:"addrs"`
		}
		if err := json.Unmarshal([]byte(line), &msg); err != nil || len(msg.Addrs) == 0 {
			_ = cmd.Process.Kill()
			<-exited
			t.Fatalf("kfake %v printed %q instead of its ready line {\"addrs\":[...]}\nstderr:\n%s", args, line, k.Stderr())
		}
		k.Addrs = msg.Addrs
	case err := <-exited:
		t.Fatalf("kfake %v exited before it was ready: %v\nstderr:\n%s", args, err, k.Stderr())
	case <-time.After(30 * time.Second):
		_ = cmd.Process.Kill()
		<-exited
		t.Fatalf("kfake %v not ready within 30s\nstderr:\n%s", args, k.Stderr())
	}

	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case err := <-exited:
			if err != nil {
				t.Errorf("kfake process exited with %v after SIGTERM\nstderr:\n%s", err, k.Stderr())
			}
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
			t.Errorf("kfake process did not stop within 10s of SIGTERM; killed\nstderr:\n%s", k.Stderr())
		}
	})
	return k
}

// firstLineWriter sends the first line written to it on c and discards the
// rest, so the process never blocks on a full stdout.
type firstLineWriter struct {
	c    chan<- string
	buf  []byte
	sent bool
}

func (w *firstLineWriter) Write(p []byte) (int, error) {
	if w.sent {
		return len(p), nil
	}
	w.buf = append(w.buf, p...)
	if i := bytes.IndexByte(w.buf, '\n'); i >= 0 {
		w.c <- string(w.buf[:i])
		w.sent, w.buf = true, nil
	} else if len(w.buf) > 1<<20 {
		w.c <- string(w.buf[:256])
		w.sent, w.buf = true, nil
	}
	return len(p), nil
}

var kfakeBuild struct {
	once sync.Once
	path string
	err  error
}

// KfakeBinary returns the path of the built standalone kfake command,
// building it if needed. Binaries are cached in <repo>/.tools/testkit-bin
// under a name hashing the command's source, go.mod, go.sum and the Go
// version, so concurrent test processes share them and never overwrite a
// binary another process may be running.
func KfakeBinary() (string, error) {
	kfakeBuild.once.Do(func() {
		kfakeBuild.path, kfakeBuild.err = buildKfake()
	})
	return kfakeBuild.path, kfakeBuild.err
}

func buildKfake() (string, error) {
	root, err := RepoRoot()
	if err != nil {
		return "", err
	}
	h := sha256.New()
	fmt.Fprintf(h, "%s %s/%s\n", runtime.Version(), runtime.GOOS, runtime.GOARCH)
	srcDir := filepath.Join(root, "internal", "testkit", "cmd", "kfake")
	srcs, err := filepath.Glob(filepath.Join(srcDir, "*.go"))
	if err != nil || len(srcs) == 0 {
		return "", fmt.Errorf("no kfake command sources in %s", srcDir)
	}
	for _, f := range append(srcs, filepath.Join(root, "go.mod"), filepath.Join(root, "go.sum")) {
		b, err := os.ReadFile(f)
		if err != nil {
			return "", err
		}
		fmt.Fprintf(h, "%s %d\n", filepath.Base(f), len(b))
		h.Write(b)
	}
	dir := filepath.Join(root, ".tools", "testkit-bin")
	bin := filepath.Join(dir, "kfake-"+hex.EncodeToString(h.Sum(nil))[:16])
	if fi, err := os.Stat(bin); err == nil && fi.Mode().IsRegular() {
		return bin, nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	goBin, err := exec.LookPath("go")
	if err != nil {
		if goroot := os.Getenv("GOROOT"); goroot != "" {
			goBin = filepath.Join(goroot, "bin", "go")
		} else {
			return "", errors.New("go command not found on PATH")
		}
	}
	tmp := fmt.Sprintf("%s.tmp%d", bin, os.Getpid())
	cmd := exec.Command(goBin, "build", "-o", tmp, "./internal/testkit/cmd/kfake")
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		os.Remove(tmp)
		return "", fmt.Errorf("go build ./internal/testkit/cmd/kfake: %v\n%s", err, out)
	}
	// Atomic: a concurrent builder renames identical content over it.
	if err := os.Rename(tmp, bin); err != nil {
		os.Remove(tmp)
		return "", err
	}
	return bin, nil
}

// syncBuffer is a bytes.Buffer safe for a writing process and a reading test.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
