package testkit

// Runners for the non-Go client libraries the end-to-end tests drive through
// the proxy: kcat (run as a process from Go), kafka-python and
// confluent-kafka-python (scripts run by Debian's /usr/bin/python3) and KafkaJS
// (a script run by node with the packages scripts/test-deps.sh installs into
// .tools/node).
//
// Every client gets the same ClientSpec: produce exactly these records, then
// consume the topic as a member of a consumer group, commit, and report in
// one JSON line (ClientResult) what was delivered and consumed.
//
// A missing tool skips the test, unless the environment variable CI is set:
// `make test` installs the tools, so under CI a missing tool fails the test.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

// Client names one non-Go client library.
type Client string

// The non-Go clients.
const (
	Kcat           Client = "kcat"
	KafkaPython    Client = "kafka-python"
	ConfluentKafka Client = "confluent-kafka-python"
	KafkaJS        Client = "kafkajs"
)

// AllClients lists every non-Go client.
var AllClients = []Client{Kcat, KafkaPython, ConfluentKafka, KafkaJS}

// ClientFeatures says what a client's runner can do.
type ClientFeatures struct {
	// Codecs the client can produce and consume with ("none" included).
	Codecs []string
	// Idempotent: the producer can run with idempotence enabled.
	Idempotent bool
	// Transactional: the producer can write all records in one transaction
	// (kcat: one transaction per producer invocation, see HeaderRuns).
	Transactional bool
	// HeaderRuns: headers cannot differ per record; every run of
	// consecutive records sharing one header list costs one producer
	// process (kcat's -H applies to everything one invocation produces).
	HeaderRuns bool
	// DeliveryKeys: ClientResult.Delivered names each record's key,
	// partition and offset. KafkaJS reports only per-partition base
	// offsets of each send (no key); kcat reports nothing.
	DeliveryKeys bool
	// Librdkafka: the client is built on librdkafka (2.0.2 here), which
	// picks codecs by the Produce versions the broker advertises.
	Librdkafka bool
}

// Features returns what c supports.
func (c Client) Features() ClientFeatures {
	all := []string{"none", "gzip", "snappy", "lz4", "zstd"}
	switch c {
	case Kcat:
		return ClientFeatures{Codecs: all, Idempotent: true, Transactional: true, HeaderRuns: true, Librdkafka: true}
	case KafkaPython:
		// kafka-python 2.0.2 has neither idempotence nor transactions.
		return ClientFeatures{Codecs: all, DeliveryKeys: true}
	case ConfluentKafka:
		return ClientFeatures{Codecs: all, Idempotent: true, Transactional: true, DeliveryKeys: true, Librdkafka: true}
	case KafkaJS:
		return ClientFeatures{Codecs: all, Idempotent: true, Transactional: true}
	}
	return ClientFeatures{}
}

// Header is one record header. Values are UTF-8 text in the JSON contract.
type Header struct {
	Key   string `json:"key"`
	Value string `json:"value"`
}

// ClientRecord is one record a client must produce.
type ClientRecord struct {
	Key     string   `json:"key"`
	Value   string   `json:"value"`
	Headers []Header `json:"headers"`
}

// ConsumedRecord is one record a client consumed.
type ConsumedRecord struct {
	ClientRecord
	Partition int32 `json:"partition"`
	Offset    int64 `json:"offset"`
}

// Delivery is a producer's acknowledgement: the record with Key (empty when
// the client does not say which record) was written at Partition/Offset.
type Delivery struct {
	Key       string `json:"key,omitempty"`
	Partition int32  `json:"partition"`
	Offset    int64  `json:"offset"`
}

// ClientSpec is what a client run must do; it is handed to the scripts as a
// JSON file.
type ClientSpec struct {
	Bootstrap string `json:"bootstrap"`
	Topic     string `json:"topic"`
	Group     string `json:"group"`
	// Compression is none, gzip, snappy, lz4 or zstd.
	Compression     string `json:"compression"`
	Idempotent      bool   `json:"idempotent"`
	Transactional   bool   `json:"transactional"`
	TransactionalID string `json:"transactional_id,omitempty"`
	// Records are produced in order, then consumed back.
	Records []ClientRecord `json:"records"`
	// Timeout bounds the client's own produce+consume work (default 20 s).
	// The process is killed a few seconds after it.
	Timeout   time.Duration `json:"-"`
	TimeoutMS int64         `json:"timeout_ms"`
}

// ClientResult is the JSON line a client prints when it is done.
type ClientResult struct {
	Client    string           `json:"client"`
	Version   string           `json:"version"`
	Delivered []Delivery       `json:"delivered"`
	Consumed  []ConsumedRecord `json:"consumed"`
	Error     string           `json:"error,omitempty"`
	// Elapsed is the wall time of the whole run (filled in by Go).
	Elapsed time.Duration `json:"-"`
}

// RunClient runs client c with spec and returns its result. It fails the
// test if the run fails, logging the client's stderr and output; it skips
// (or, under CI, fails) the test if the client's tools are missing.
func RunClient(t testing.TB, c Client, spec ClientSpec) *ClientResult {
	t.Helper()
	tool := RequireClient(t, c)
	res, err := tool.Run(context.Background(), spec)
	if err != nil {
		t.Fatalf("%s run failed: %v", c, err)
	}
	return res
}

// ClientTool is a located, runnable client.
type ClientTool struct {
	Client Client
	// Path is the executable: kcat, /usr/bin/python3 or node.
	Path string
	// Script is the client script (empty for kcat).
	Script string
	// Env is added to the environment (NODE_PATH for KafkaJS).
	Env []string
}

// RequireClient locates everything client c needs. If something is absent it
// skips the test, or fails it when the environment variable CI is set.
func RequireClient(t testing.TB, c Client) *ClientTool {
	t.Helper()
	tool, err := LocateClient(c)
	if err != nil {
		MissingTool(t, "%s: %v", c, err)
	}
	return tool
}

// MissingTool skips the test with the reason, or fails it under CI, where
// the tools are supposed to be installed (make test runs
// scripts/test-deps.sh first).
func MissingTool(t testing.TB, format string, args ...any) {
	t.Helper()
	msg := fmt.Sprintf(format, args...) + " (install with scripts/test-deps.sh)"
	if InCI() {
		t.Fatalf("required test tool missing under CI=%s: %s", os.Getenv("CI"), msg)
	}
	t.Skip("skipping: " + msg)
}

// InCI reports whether the environment variable CI is set to something
// other than "", "0" or "false".
func InCI() bool {
	v := strings.ToLower(strings.TrimSpace(os.Getenv("CI")))
	return v != "" && v != "0" && v != "false"
}

var locateCache sync.Map // Client -> locateResult

type locateResult struct {
	tool *ClientTool
	err  error
}

// LocateClient finds client c's executable and script and checks that its
// libraries load. Results are cached per process. Overrides: AMBER_KCAT (kcat
// binary), AMBER_PYTHON (python with the Debian packages, default
// /usr/bin/python3), AMBER_NODE_MODULES (default <repo>/.tools/node/node_modules).
func LocateClient(c Client) (*ClientTool, error) {
	if r, ok := locateCache.Load(c); ok {
		r := r.(locateResult)
		return r.tool, r.err
	}
	tool, err := locateClient(c)
	locateCache.Store(c, locateResult{tool, err})
	return tool, err
}

func locateClient(c Client) (*ClientTool, error) {
	root, err := RepoRoot()
	if err != nil {
		return nil, err
	}
	scripts := filepath.Join(root, "internal", "testkit", "clients")
	switch c {
	case Kcat:
		path := os.Getenv("AMBER_KCAT")
		if path == "" {
			if path, err = exec.LookPath("kcat"); err != nil {
				return nil, errors.New("kcat not found on PATH (Debian package kcat)")
			}
		}
		if out, err := exec.Command(path, "-V").CombinedOutput(); err != nil {
			return nil, fmt.Errorf("%s -V: %v %s", path, err, bytes.TrimSpace(out))
		}
		return &ClientTool{Client: c, Path: path}, nil

	case KafkaPython, ConfluentKafka:
		py := os.Getenv("AMBER_PYTHON")
		if py == "" {
			py = "/usr/bin/python3" // the pyenv python3 on PATH cannot see Debian's packages
		}
		if _, err := os.Stat(py); err != nil {
			return nil, fmt.Errorf("python not found: %v", err)
		}
		module, script, pkg := "kafka", "kafka_python.py", "python3-kafka"
		if c == ConfluentKafka {
			module, script, pkg = "confluent_kafka", "confluent_kafka.py", "python3-confluent-kafka"
		}
		if out, err := exec.Command(py, "-c", "import "+module).CombinedOutput(); err != nil {
			return nil, fmt.Errorf("%s cannot import %s (Debian package %s): %v: %s", py, module, pkg, err, bytes.TrimSpace(out))
		}
		return &ClientTool{Client: c, Path: py, Script: filepath.Join(scripts, script)}, nil

	case KafkaJS:
		node, err := exec.LookPath("node")
		if err != nil {
			return nil, errors.New("node not found on PATH")
		}
		mods := os.Getenv("AMBER_NODE_MODULES")
		if mods == "" {
			mods = filepath.Join(root, ".tools", "node", "node_modules")
		}
		for _, pkg := range []string{"kafkajs", "kafkajs-snappy", "lz4js", "@bokuweb/zstd-wasm"} {
			if _, err := os.Stat(filepath.Join(mods, pkg, "package.json")); err != nil {
				return nil, fmt.Errorf("npm package %s not installed in %s", pkg, mods)
			}
		}
		return &ClientTool{Client: c, Path: node, Script: filepath.Join(scripts, "kafkajs.js"),
			Env: []string{"NODE_PATH=" + mods, "KAFKAJS_NO_PARTITIONER_WARNING=1"}}, nil
	}
	return nil, fmt.Errorf("unknown client %q", c)
}

// Run runs the client with spec. The error, if any, carries the client's
// stderr and whatever it printed.
func (ct *ClientTool) Run(ctx context.Context, spec ClientSpec) (*ClientResult, error) {
	if spec.Timeout <= 0 {
		spec.Timeout = 20 * time.Second
	}
	spec.TimeoutMS = spec.Timeout.Milliseconds()
	if spec.Compression == "" {
		spec.Compression = "none"
	}
	if spec.Transactional && spec.TransactionalID == "" {
		spec.TransactionalID = "amber-e2e-" + spec.Topic
	}
	if spec.Records == nil {
		spec.Records = []ClientRecord{}
	}
	// The process gets some slack beyond the client's own deadline, so the
	// client can report what it saw before we kill it.
	ctx, cancel := context.WithTimeout(ctx, spec.Timeout+10*time.Second)
	defer cancel()

	start := time.Now()
	var res *ClientResult
	var err error
	if ct.Client == Kcat {
		res, err = ct.runKcat(ctx, spec)
	} else {
		res, err = ct.runScript(ctx, spec)
	}
	if res != nil {
		res.Elapsed = time.Since(start)
	}
	return res, err
}

func (ct *ClientTool) runScript(ctx context.Context, spec ClientSpec) (*ClientResult, error) {
	dir, err := os.MkdirTemp("", "amber-client-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	specPath := filepath.Join(dir, "spec.json")
	b, err := json.Marshal(spec)
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(specPath, b, 0o600); err != nil {
		return nil, err
	}
	stdout, err := runProcess(ctx, ct.Env, nil, ct.Path, ct.Script, specPath)
	line := lastLine(stdout)
	var res ClientResult
	if line == "" {
		if err == nil {
			err = errors.New("client printed no result line")
		}
		return nil, err
	}
	if jerr := json.Unmarshal([]byte(line), &res); jerr != nil {
		return nil, errors.Join(err, fmt.Errorf("parse client result %q: %w", truncate(line, 2000), jerr))
	}
	if res.Error != "" && err == nil {
		err = fmt.Errorf("client reported error: %s", res.Error)
	}
	if err != nil {
		return &res, fmt.Errorf("%w\nclient result: %s", err, truncate(line, 4000))
	}
	return &res, nil
}

// runKcat produces with one kcat -P per run of records sharing headers, then
// consumes with one kcat -G that exits after len(records) messages; kcat
// commits the consumed offsets as it closes (enable.auto.commit).
func (ct *ClientTool) runKcat(ctx context.Context, spec ClientSpec) (*ClientResult, error) {
	res := &ClientResult{Client: "kcat"}
	if out, err := exec.CommandContext(ctx, ct.Path, "-V").Output(); err == nil {
		// "Version 1.7.1 (JSON, ..., librdkafka 2.0.2 builtin.features=...)"
		for _, l := range strings.Split(string(out), "\n") {
			if v, ok := strings.CutPrefix(l, "Version "); ok {
				v, _, _ = strings.Cut(v, " builtin.features")
				res.Version = strings.TrimSuffix(v, ")") + ")"
			}
		}
	}

	common := []string{"-b", spec.Bootstrap, "-X", "client.id=amber-e2e-kcat"}
	for i := 0; i < len(spec.Records); {
		j := i + 1
		for j < len(spec.Records) && sameHeaders(spec.Records[i].Headers, spec.Records[j].Headers) {
			j++
		}
		args := append([]string{}, common...)
		args = append(args, "-P", "-t", spec.Topic, "-K", "\t", "-X", "acks=all", "-X", "linger.ms=5")
		if spec.Compression != "none" {
			args = append(args, "-z", spec.Compression)
		}
		if spec.Idempotent {
			args = append(args, "-X", "enable.idempotence=true")
		}
		if spec.Transactional {
			// kcat commits everything it produced in one transaction at EOF.
			args = append(args, "-X", "transactional.id="+spec.TransactionalID)
		}
		for _, h := range spec.Records[i].Headers {
			if h.Key == "" || strings.Contains(h.Key, "=") {
				return res, fmt.Errorf("kcat cannot send header key %q (empty or contains '=')", h.Key)
			}
			args = append(args, "-H", h.Key+"="+h.Value)
		}
		var in bytes.Buffer
		for _, r := range spec.Records[i:j] {
			if strings.ContainsAny(r.Key, "\t\n") || strings.ContainsAny(r.Value, "\n") {
				return res, fmt.Errorf("kcat input cannot carry key %q / value %q (tab or newline)", r.Key, r.Value)
			}
			in.WriteString(r.Key + "\t" + r.Value + "\n")
		}
		if _, err := runProcess(ctx, nil, &in, ct.Path, args...); err != nil {
			return res, fmt.Errorf("kcat produce of records %d..%d: %w", i, j-1, err)
		}
		i = j
	}

	if len(spec.Records) == 0 {
		return res, nil
	}
	args := append([]string{}, common...)
	args = append(args, "-G", spec.Group, "-c", fmt.Sprint(len(spec.Records)), "-e", "-J", "-q",
		"-X", "auto.offset.reset=earliest", "-X", "isolation.level=read_committed",
		"-X", "fetch.wait.max.ms=100", spec.Topic)
	// kcat has no deadline of its own: bound it with the spec's timeout.
	cctx, cancel := context.WithTimeout(ctx, spec.Timeout)
	defer cancel()
	stdout, err := runProcess(cctx, nil, nil, ct.Path, args...)
	for _, l := range strings.Split(stdout, "\n") {
		if strings.TrimSpace(l) == "" {
			continue
		}
		var m struct {
			Partition int32    `json:"partition"`
			Offset    int64    `json:"offset"`
			Headers   []string `json:"headers"`
			Key       *string  `json:"key"`
			Payload   *string  `json:"payload"`
		}
		if jerr := json.Unmarshal([]byte(l), &m); jerr != nil {
			return res, errors.Join(err, fmt.Errorf("parse kcat output line %q: %w", truncate(l, 500), jerr))
		}
		r := ConsumedRecord{Partition: m.Partition, Offset: m.Offset}
		if m.Key != nil {
			r.Key = *m.Key
		}
		if m.Payload != nil {
			r.Value = *m.Payload
		}
		for k := 0; k+1 < len(m.Headers); k += 2 {
			r.Headers = append(r.Headers, Header{Key: m.Headers[k], Value: m.Headers[k+1]})
		}
		res.Consumed = append(res.Consumed, r)
	}
	if err != nil {
		return res, fmt.Errorf("kcat consume (got %d of %d records): %w", len(res.Consumed), len(spec.Records), err)
	}
	return res, nil
}

func sameHeaders(a, b []Header) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// runProcess runs name with args, returning stdout. On failure the error
// includes the exit status, whether the context expired, and stderr.
func runProcess(ctx context.Context, env []string, stdin *bytes.Buffer, name string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = append(os.Environ(), env...)
	if stdin != nil {
		cmd.Stdin = stdin
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout = &stdout
	cmd.Stderr = &stderr
	cmd.WaitDelay = 2 * time.Second
	err := cmd.Run()
	if err != nil {
		why := err.Error()
		if ctx.Err() != nil {
			why = fmt.Sprintf("killed: %v (%v)", ctx.Err(), err)
		}
		return stdout.String(), fmt.Errorf("%s %s: %s\n--- stderr ---\n%s--- end stderr ---",
			filepath.Base(name), strings.Join(quoteArgs(args), " "), why, tail(stderr.String(), 16<<10))
	}
	return stdout.String(), nil
}

func quoteArgs(args []string) []string {
	q := make([]string, len(args))
	for i, a := range args {
		if a == "" || strings.ContainsAny(a, " \t\n\"'") {
			a = fmt.Sprintf("%q", a)
		}
		q[i] = a
	}
	return q
}

func lastLine(s string) string {
	sc := bufio.NewScanner(strings.NewReader(s))
	sc.Buffer(make([]byte, 0, 64<<10), 256<<20)
	var last string
	for sc.Scan() {
		if l := strings.TrimSpace(sc.Text()); l != "" {
			last = l
		}
	}
	return last
}

func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "...[truncated]...\n" + s[len(s)-n:]
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "...[truncated]"
}

var repoRoot struct {
	once sync.Once
	dir  string
	err  error
}

// RepoRoot returns the repository's root directory (the one holding the
// module's go.mod).
func RepoRoot() (string, error) {
	repoRoot.once.Do(func() {
		var starts []string
		if _, file, _, ok := runtime.Caller(0); ok {
			starts = append(starts, filepath.Dir(file))
		}
		if wd, err := os.Getwd(); err == nil {
			starts = append(starts, wd)
		}
		for _, dir := range starts {
			for d := dir; ; d = filepath.Dir(d) {
				b, err := os.ReadFile(filepath.Join(d, "go.mod"))
				if err == nil && bytes.Contains(b, []byte("module github.com/amber-kafka/amber\n")) {
					repoRoot.dir = d
					return
				}
				if filepath.Dir(d) == d {
					break
				}
			}
		}
		repoRoot.err = errors.New("cannot find the amber repository root (go.mod) from the source or working directory")
	})
	return repoRoot.dir, repoRoot.err
}
