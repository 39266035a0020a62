package deploy_test

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/amber-kafka/amber/internal/testkit"
)

// root is the repository root.
func root(t testing.TB) string {
	t.Helper()
	r, err := testkit.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// helm finds the Helm that scripts/test-deps.sh installs (AMBER_HELM
// overrides). Missing, it skips the test, or fails it under CI.
func helm(t testing.TB) string {
	t.Helper()
	p := os.Getenv("AMBER_HELM")
	if p == "" {
		p = filepath.Join(root(t), ".tools", "bin", "helm")
	}
	if _, err := os.Stat(p); err != nil {
		testkit.MissingTool(t, "helm not found at %s", p)
	}
	return p
}

func chartDir(t testing.TB) string { return filepath.Join(root(t), "deploy", "helm", "amber") }

// runHelm runs helm with args and returns stdout, or the error with
// stderr.
func runHelm(t testing.TB, args ...string) (string, error) {
	t.Helper()
	cmd := exec.Command(helm(t), args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.String(), fmt.Errorf("helm %s: %v\n%s%s", strings.Join(args, " "), err, stdout.String(), stderr.String())
	}
	return stdout.String(), nil
}

// The kubernetes objects the tests look at, as far as they look.

type manifest struct {
	APIVersion string   `yaml:"apiVersion"`
	Kind       string   `yaml:"kind"`
	Metadata   metadata `yaml:"metadata"`
	Spec       spec     `yaml:"spec"`
}

type metadata struct {
	Name   string            `yaml:"name"`
	Labels map[string]string `yaml:"labels"`
}

type spec struct {
	// StatefulSet, Deployment
	Replicas             int    `yaml:"replicas"`
	ServiceName          string `yaml:"serviceName"`
	Strategy             struct{ Type string }
	Template             struct{ Spec podSpec } `yaml:"template"`
	VolumeClaimTemplates []struct {
		Metadata metadata `yaml:"metadata"`
		Spec     struct {
			AccessModes []string `yaml:"accessModes"`
			Resources   struct {
				Requests map[string]string `yaml:"requests"`
			} `yaml:"resources"`
		} `yaml:"spec"`
	} `yaml:"volumeClaimTemplates"`
	// Service (Selector is also the monitors' {matchLabels: ...})
	Type                     string         `yaml:"type"`
	ClusterIP                string         `yaml:"clusterIP"`
	PublishNotReadyAddresses bool           `yaml:"publishNotReadyAddresses"`
	Ports                    []servicePort  `yaml:"ports"`
	Selector                 map[string]any `yaml:"selector"`
	// ServiceMonitor, PodMonitor
	Endpoints           []struct{ Port, Path string } `yaml:"endpoints"`
	PodMetricsEndpoints []struct{ Port, Path string } `yaml:"podMetricsEndpoints"`
	// PrometheusRule
	Groups []struct {
		Rules []struct {
			Alert string `yaml:"alert"`
			Expr  string `yaml:"expr"`
		} `yaml:"rules"`
	} `yaml:"groups"`
}

type servicePort struct {
	Name       string `yaml:"name"`
	Port       int    `yaml:"port"`
	TargetPort any    `yaml:"targetPort"`
}

type podSpec struct {
	SecurityContext               map[string]any `yaml:"securityContext"`
	TerminationGracePeriodSeconds int            `yaml:"terminationGracePeriodSeconds"`
	AutomountServiceAccountToken  *bool          `yaml:"automountServiceAccountToken"`
	InitContainers                []container    `yaml:"initContainers"`
	Containers                    []container    `yaml:"containers"`
	Volumes                       []podVolume    `yaml:"volumes"`
}

type podVolume struct {
	Name     string         `yaml:"name"`
	EmptyDir map[string]any `yaml:"emptyDir"`
	PVC      *struct {
		ClaimName string `yaml:"claimName"`
	} `yaml:"persistentVolumeClaim"`
	Secret *struct {
		SecretName string `yaml:"secretName"`
	} `yaml:"secret"`
}

type container struct {
	Name          string   `yaml:"name"`
	Image         string   `yaml:"image"`
	Command       []string `yaml:"command"`
	Args          []string `yaml:"args"`
	RestartPolicy string   `yaml:"restartPolicy"`
	Env           []envVar `yaml:"env"`
	EnvFrom       []any    `yaml:"envFrom"`
	Ports         []struct {
		Name          string `yaml:"name"`
		ContainerPort int    `yaml:"containerPort"`
	} `yaml:"ports"`
	StartupProbe    *probe `yaml:"startupProbe"`
	LivenessProbe   *probe `yaml:"livenessProbe"`
	ReadinessProbe  *probe `yaml:"readinessProbe"`
	SecurityContext struct {
		RunAsNonRoot             *bool  `yaml:"runAsNonRoot"`
		RunAsUser                *int64 `yaml:"runAsUser"`
		ReadOnlyRootFilesystem   *bool  `yaml:"readOnlyRootFilesystem"`
		AllowPrivilegeEscalation *bool  `yaml:"allowPrivilegeEscalation"`
		Capabilities             struct {
			Drop []string `yaml:"drop"`
		} `yaml:"capabilities"`
	} `yaml:"securityContext"`
	VolumeMounts []struct {
		Name      string `yaml:"name"`
		MountPath string `yaml:"mountPath"`
		ReadOnly  bool   `yaml:"readOnly"`
	} `yaml:"volumeMounts"`
	Resources struct {
		Limits map[string]string `yaml:"limits"`
	} `yaml:"resources"`
}

type envVar struct {
	Name      string  `yaml:"name"`
	Value     *string `yaml:"value"`
	ValueFrom *struct {
		SecretKeyRef *struct {
			Name string `yaml:"name"`
			Key  string `yaml:"key"`
		} `yaml:"secretKeyRef"`
		FieldRef         map[string]any `yaml:"fieldRef"`
		ResourceFieldRef map[string]any `yaml:"resourceFieldRef"`
	} `yaml:"valueFrom"`
}

type probe struct {
	HTTPGet *struct {
		Path string `yaml:"path"`
		Port any    `yaml:"port"`
	} `yaml:"httpGet"`
}

// rendered is one `helm template`.
type rendered struct {
	objs []manifest
	raw  string
}

// render runs helm template on the chart with the values files (relative
// to the chart) and --set flags, in namespace kafka, release "amber".
func render(t testing.TB, files []string, sets ...string) *rendered {
	t.Helper()
	r, err := tryRender(t, files, sets...)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func tryRender(t testing.TB, files []string, sets ...string) (*rendered, error) {
	t.Helper()
	args := []string{"template", "amber", chartDir(t), "--namespace", "kafka"}
	for _, f := range files {
		args = append(args, "-f", filepath.Join(chartDir(t), f))
	}
	for _, s := range sets {
		args = append(args, "--set", s)
	}
	out, err := runHelm(t, args...)
	if err != nil {
		return nil, err
	}
	r := &rendered{raw: out}
	dec := yaml.NewDecoder(strings.NewReader(out))
	for {
		var m manifest
		err := dec.Decode(&m)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("rendered manifests do not parse: %v\n%s", err, out)
		}
		if m.Kind != "" {
			r.objs = append(r.objs, m)
		}
	}
	return r, nil
}

func (r *rendered) kinds() []string {
	var ks []string
	for _, o := range r.objs {
		ks = append(ks, o.Kind+"/"+o.Metadata.Name)
	}
	sort.Strings(ks)
	return ks
}

// all returns the objects of a kind.
func (r *rendered) all(kind string) []manifest {
	var out []manifest
	for _, o := range r.objs {
		if o.Kind == kind {
			out = append(out, o)
		}
	}
	return out
}

// one returns the only object of a kind, failing otherwise.
func (r *rendered) one(t testing.TB, kind string) manifest {
	t.Helper()
	all := r.all(kind)
	if len(all) != 1 {
		t.Fatalf("want one %s, rendered %v", kind, r.kinds())
	}
	return all[0]
}

// find returns the container named name among cs.
func find(cs []container, name string) (container, bool) {
	for _, c := range cs {
		if c.Name == name {
			return c, true
		}
	}
	return container{}, false
}

// flagValue returns the value of --name=V in args.
func flagValue(args []string, name string) (string, bool) {
	for _, a := range args {
		if v, ok := strings.CutPrefix(a, "--"+name+"="); ok {
			return v, true
		}
	}
	return "", false
}

func (c container) env(name string) (envVar, bool) {
	for _, e := range c.Env {
		if e.Name == name {
			return e, true
		}
	}
	return envVar{}, false
}

// amberBin builds ./cmd/amber once per test binary.
var amberBin struct {
	once sync.Once
	path string
	err  error
}

func amber(t testing.TB) string {
	t.Helper()
	amberBin.once.Do(func() {
		dir, err := os.MkdirTemp("", "amber-deploy-test-")
		if err != nil {
			amberBin.err = err
			return
		}
		amberBin.path = filepath.Join(dir, "amber")
		cmd := exec.Command("go", "build", "-o", amberBin.path, "./cmd/amber")
		cmd.Dir = root(t)
		if out, err := cmd.CombinedOutput(); err != nil {
			amberBin.err = fmt.Errorf("go build ./cmd/amber: %v\n%s", err, out)
		}
	})
	if amberBin.err != nil {
		t.Fatal(amberBin.err)
	}
	return amberBin.path
}

func TestMain(m *testing.M) {
	code := m.Run()
	if amberBin.path != "" {
		os.RemoveAll(filepath.Dir(amberBin.path))
	}
	os.Exit(code)
}

// checkProxyFlags fails the test unless `amber proxy` accepts args (which
// must start with "proxy"): it parses them all before --help, so an unknown
// flag or a malformed value is an error while a good set prints the usage.
func checkProxyFlags(t testing.TB, what string, args []string) {
	t.Helper()
	if len(args) == 0 || args[0] != "proxy" {
		t.Fatalf("%s: args %q do not start with the proxy subcommand", what, args)
	}
	cmd := exec.Command(amber(t), append(append([]string{}, args...), "--help")...)
	cmd.Env = os.Environ()
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.HasPrefix(string(out), "Usage: amber proxy") {
		t.Errorf("%s: amber refuses the flags %q: %v\n%s", what, args, err, out)
	}
}

// Metric names: those cmd/amber registers, and the few from elsewhere the
// dashboard and alerts use.
var (
	metricLit   = regexp.MustCompile(`"(amber_[a-z0-9_]+)"`)
	amberToken  = regexp.MustCompile(`\bamber_[a-z0-9_]+`)
	selectorTok = regexp.MustCompile(`\b([a-zA-Z_:][a-zA-Z0-9_:]*)\{`)
	external    = map[string]bool{
		"process_cpu_seconds_total":       true, // prometheus process collector, registered by amber proxy
		"process_resident_memory_bytes":   true,
		"kube_pod_container_status_ready": true, // kube-state-metrics
	}
)

// exportedMetrics reads the metric names out of cmd/amber's non-test
// sources.
func exportedMetrics(t testing.TB) map[string]bool {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(root(t), "cmd", "amber", "*.go"))
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{}
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range metricLit.FindAllStringSubmatch(string(b), -1) {
			names[m[1]] = true
		}
	}
	if len(names) < 20 {
		t.Fatalf("found only %d amber_ metric names in cmd/amber: has registration moved?", len(names))
	}
	return names
}

// unknownMetrics returns the metric names expr uses that nothing exports.
func unknownMetrics(expr string, known map[string]bool) []string {
	var bad []string
	isKnown := func(n string) bool {
		if known[n] || external[n] {
			return true
		}
		for _, suf := range []string{"_bucket", "_sum", "_count"} {
			if b, ok := strings.CutSuffix(n, suf); ok && known[b] {
				return true
			}
		}
		return false
	}
	for _, n := range amberToken.FindAllString(expr, -1) {
		if !isKnown(n) {
			bad = append(bad, n)
		}
	}
	for _, m := range selectorTok.FindAllStringSubmatch(expr, -1) {
		if n := m[1]; !strings.HasPrefix(n, "amber_") && !isKnown(n) {
			bad = append(bad, n)
		}
	}
	return bad
}
