package deploy_test

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// The values files the chart ships for linting and these tests
// (chart-testing's ci/ convention).
var (
	gatewayValues = []string{"ci/gateway-values.yaml"}
	sidecarValues = []string{"ci/sidecar-values.yaml"}
)

func TestChartLint(t *testing.T) {
	for _, files := range [][]string{nil, gatewayValues, sidecarValues} {
		args := []string{"lint", "--strict", chartDir(t)}
		for _, f := range files {
			args = append(args, "-f", chartDir(t)+"/"+f)
		}
		if out, err := runHelm(t, args...); err != nil {
			t.Errorf("%v", err)
		} else if !strings.Contains(out, "0 chart(s) failed") {
			t.Errorf("helm %s:\n%s", strings.Join(args, " "), out)
		}
	}
}

func TestGateway(t *testing.T) {
	r := render(t, gatewayValues)

	sts := r.one(t, "StatefulSet")
	pod := sts.Spec.Template.Spec
	c, ok := find(pod.Containers, "amber")
	if !ok {
		t.Fatalf("StatefulSet has no amber container: %+v", pod.Containers)
	}
	checkProxyFlags(t, "gateway container", c.Args)
	checkHardened(t, pod, c)
	checkProbes(t, c)

	// The journal on a claim from the StatefulSet's template, mounted at --data.
	if len(sts.Spec.VolumeClaimTemplates) != 1 {
		t.Fatalf("want one volumeClaimTemplate, got %+v", sts.Spec.VolumeClaimTemplates)
	}
	vct := sts.Spec.VolumeClaimTemplates[0]
	if vct.Spec.Resources.Requests["storage"] == "" || len(vct.Spec.AccessModes) == 0 {
		t.Errorf("volumeClaimTemplate %+v: want a size and an access mode", vct)
	}
	data, _ := flagValue(c.Args, "data")
	mounted := false
	for _, m := range c.VolumeMounts {
		if m.Name == vct.Metadata.Name && m.MountPath == data && !m.ReadOnly {
			mounted = true
		}
	}
	if data == "" || !mounted {
		t.Errorf("--data=%q is not the claim %q's mount: %+v", data, vct.Metadata.Name, c.VolumeMounts)
	}
	for _, v := range pod.Volumes {
		if v.Name == vct.Metadata.Name {
			t.Errorf("pod volume %q shadows the volumeClaimTemplate", v.Name)
		}
	}

	for flag, want := range map[string]string{
		"upstream":         "kafka-0.kafka-headless.kafka.svc:9092,kafka-1.kafka-headless.kafka.svc:9092,kafka-2.kafka-headless.kafka.svc:9092",
		"listen":           "0.0.0.0:9092",
		"broker-port-base": "9093",
		"advertise-host":   "amber.kafka.svc.cluster.local",
		"archive":          "s3://kafka-backups/prod",
		"admin-listen":     "0.0.0.0:9080",
		"durability":       "sync",
	} {
		if got, _ := flagValue(c.Args, flag); got != want {
			t.Errorf("--%s=%q, want %q (args %q)", flag, got, want, c.Args)
		}
	}

	// The client Service: bootstrap plus 6 broker ports, onto named
	// container ports that exist.
	svc, headless := services(t, r)
	checkPorts(t, svc, 9092, 6, false)
	checkPorts(t, headless, 9092, 6, true)
	checkTargets(t, svc, c)
	checkTargets(t, headless, c)
	if sts.Spec.ServiceName != headless.Metadata.Name || headless.Spec.ClusterIP != "None" || !headless.Spec.PublishNotReadyAddresses {
		t.Errorf("StatefulSet serviceName %q: want the headless Service %q (clusterIP None, publishing not-ready pods)", sts.Spec.ServiceName, headless.Metadata.Name)
	}
	if !selects(svc.Spec.Selector, sts.Metadata.Labels) || !selects(headless.Spec.Selector, sts.Metadata.Labels) {
		t.Errorf("Services do not select the StatefulSet's pods: %v / %v vs %v", svc.Spec.Selector, headless.Spec.Selector, sts.Metadata.Labels)
	}

	// SIGTERM: drain, then upload, each up to --drain-timeout.
	drain := drainSeconds(t, c.Args)
	if pod.TerminationGracePeriodSeconds < 2*drain+10 {
		t.Errorf("terminationGracePeriodSeconds %d: want at least 2 × --drain-timeout (%ds) + 10", pod.TerminationGracePeriodSeconds, drain)
	}
	if g, ok := c.env("GOMEMLIMIT"); !ok || g.ValueFrom == nil || g.ValueFrom.ResourceFieldRef == nil || c.Resources.Limits["memory"] == "" {
		t.Errorf("want a memory limit and GOMEMLIMIT from it: %+v", c.Resources)
	}

	// The ServiceMonitor scrapes the headless Service's admin port, and
	// only that Service (else every pod is scraped twice).
	sm := r.one(t, "ServiceMonitor")
	ml, _ := sm.Spec.Selector["matchLabels"].(map[string]any)
	if !selects(ml, headless.Metadata.Labels) || selects(ml, svc.Metadata.Labels) {
		t.Errorf("ServiceMonitor selector %v: want the headless Service only (labels %v / %v)", ml, headless.Metadata.Labels, svc.Metadata.Labels)
	}
	if len(sm.Spec.Endpoints) != 1 || sm.Spec.Endpoints[0].Port != "admin" || sm.Spec.Endpoints[0].Path != "/metrics" {
		t.Errorf("ServiceMonitor endpoints %+v: want admin /metrics", sm.Spec.Endpoints)
	}
	checkRules(t, r)
	checkNoInlineSecrets(t, r)
}

func TestGatewayBrokerPorts(t *testing.T) {
	for _, tc := range []struct{ port, brokers int }{{9092, 1}, {9092, 12}, {19092, 3}} {
		t.Run(fmt.Sprintf("%d+%d", tc.port, tc.brokers), func(t *testing.T) {
			r := render(t, gatewayValues, fmt.Sprintf("proxy.port=%d", tc.port), fmt.Sprintf("proxy.brokerPorts=%d", tc.brokers))
			c, _ := find(r.one(t, "StatefulSet").Spec.Template.Spec.Containers, "amber")
			svc, headless := services(t, r)
			checkPorts(t, svc, tc.port, tc.brokers, false)
			checkPorts(t, headless, tc.port, tc.brokers, true)
			checkTargets(t, svc, c)
			if got, _ := flagValue(c.Args, "broker-port-base"); got != strconv.Itoa(tc.port+1) {
				t.Errorf("--broker-port-base=%s, want %d", got, tc.port+1)
			}
			if got, _ := flagValue(c.Args, "listen"); got != fmt.Sprintf("0.0.0.0:%d", tc.port) {
				t.Errorf("--listen=%s", got)
			}
		})
	}
}

// One replica advertises the client Service; several advertise each pod's
// own name, because each replica numbers broker ports in its own order.
func TestGatewayAdvertise(t *testing.T) {
	for _, tc := range []struct {
		sets []string
		want string
	}{
		{nil, "amber.kafka.svc.cluster.local"},
		{[]string{"gateway.replicas=3"}, "$(POD_NAME).amber-headless.kafka.svc.cluster.local"},
		{[]string{"gateway.replicas=3", "gateway.clusterDomain=k8s.internal"}, "$(POD_NAME).amber-headless.kafka.svc.k8s.internal"},
		{[]string{"gateway.advertiseHost=kafka-proxy.example.com"}, "kafka-proxy.example.com"},
	} {
		r := render(t, gatewayValues, tc.sets...)
		sts := r.one(t, "StatefulSet")
		c, _ := find(sts.Spec.Template.Spec.Containers, "amber")
		if got, _ := flagValue(c.Args, "advertise-host"); got != tc.want {
			t.Errorf("%v: --advertise-host=%q, want %q", tc.sets, got, tc.want)
		}
		if strings.Contains(tc.want, "$(POD_NAME)") {
			if e, ok := c.env("POD_NAME"); !ok || e.ValueFrom == nil || e.ValueFrom.FieldRef["fieldPath"] != "metadata.name" {
				t.Errorf("%v: $(POD_NAME) used but not set from metadata.name: %+v", tc.sets, c.Env)
			}
		}
	}
	// IPv6: brackets, for the listeners and the admin endpoint.
	r := render(t, gatewayValues, "gateway.listenHost=::")
	c, _ := find(r.one(t, "StatefulSet").Spec.Template.Spec.Containers, "amber")
	checkProxyFlags(t, "IPv6 gateway", c.Args)
	for flag, want := range map[string]string{"listen": "[::]:9092", "admin-listen": "[::]:9080"} {
		if got, _ := flagValue(c.Args, flag); got != want {
			t.Errorf("IPv6: --%s=%q, want %q", flag, got, want)
		}
	}
}

func TestSidecar(t *testing.T) {
	r := render(t, sidecarValues)
	for _, kind := range []string{"StatefulSet", "Service", "ServiceMonitor"} {
		if len(r.all(kind)) != 0 {
			t.Errorf("sidecar mode rendered a %s: %v", kind, r.kinds())
		}
	}
	dep := r.one(t, "Deployment")
	pod := dep.Spec.Template.Spec
	if len(pod.Containers) != 2 || len(pod.InitContainers) != 0 {
		t.Fatalf("want two containers (application and amber), got %d (+%d init)", len(pod.Containers), len(pod.InitContainers))
	}
	c, ok := find(pod.Containers, "amber")
	if !ok {
		t.Fatalf("no amber container in %+v", pod.Containers)
	}
	checkProxyFlags(t, "sidecar container", c.Args)
	checkHardened(t, pod, c)
	checkProbes(t, c)
	if got, _ := flagValue(c.Args, "listen"); got != "127.0.0.1:9092" {
		t.Errorf("sidecar --listen=%q, want 127.0.0.1:9092 (loopback only)", got)
	}
	if _, ok := flagValue(c.Args, "advertise-host"); ok {
		t.Errorf("sidecar sets --advertise-host; the loopback listen host is the right one: %q", c.Args)
	}
	for _, p := range c.Ports {
		if p.Name != "admin" {
			t.Errorf("sidecar declares port %s/%d: the proxy listens on loopback, nothing outside the pod can reach it", p.Name, p.ContainerPort)
		}
	}

	// The application talks to localhost.
	var app container
	for _, x := range pod.Containers {
		if x.Name != "amber" {
			app = x
		}
	}
	if !strings.Contains(strings.Join(append(app.Command, app.Args...), " "), "bootstrap.servers=127.0.0.1:9092") {
		t.Errorf("the example application does not bootstrap from 127.0.0.1:9092: %q %q", app.Command, app.Args)
	}
	if app.SecurityContext.RunAsNonRoot == nil || !*app.SecurityContext.RunAsNonRoot || app.SecurityContext.RunAsUser == nil {
		t.Errorf("application container: want runAsNonRoot with a numeric runAsUser, got %+v", app.SecurityContext)
	}

	// The journal: an emptyDir by default, with a size limit.
	if v := volume(t, pod, "data"); v.EmptyDir == nil || v.EmptyDir["sizeLimit"] == nil {
		t.Errorf("data volume %+v: want an emptyDir with a sizeLimit", v)
	}
	if dep.Spec.Strategy.Type == "Recreate" {
		t.Errorf("an emptyDir journal needs no Recreate strategy")
	}
	checkNoInlineSecrets(t, r)

	// With monitoring: a PodMonitor on the admin port.
	pm := render(t, sidecarValues, "serviceMonitor.enabled=true").one(t, "PodMonitor")
	if ml, _ := pm.Spec.Selector["matchLabels"].(map[string]any); !selects(ml, dep.Metadata.Labels) ||
		len(pm.Spec.PodMetricsEndpoints) != 1 || pm.Spec.PodMetricsEndpoints[0].Port != "admin" {
		t.Errorf("PodMonitor %+v does not scrape the Deployment's admin port", pm.Spec)
	}
}

func TestSidecarNative(t *testing.T) {
	r := render(t, sidecarValues, "sidecar.nativeSidecar=true")
	pod := r.one(t, "Deployment").Spec.Template.Spec
	if len(pod.InitContainers) != 1 || len(pod.Containers) != 1 {
		t.Fatalf("native sidecar: want amber as the one init container and the application as the one container, got %d + %d", len(pod.InitContainers), len(pod.Containers))
	}
	c := pod.InitContainers[0]
	if c.Name != "amber" || c.RestartPolicy != "Always" || c.StartupProbe == nil {
		t.Errorf("native sidecar %s: restartPolicy %q, startup probe %v: want amber, Always, a startup probe (the application starts after it passes)", c.Name, c.RestartPolicy, c.StartupProbe != nil)
	}
	checkProxyFlags(t, "native sidecar", c.Args)
}

func TestSidecarPersistentJournal(t *testing.T) {
	r := render(t, sidecarValues, "sidecar.data.persistentVolumeClaim.claimName=orders-amber")
	dep := r.one(t, "Deployment")
	if v := volume(t, dep.Spec.Template.Spec, "data"); v.PVC == nil || v.PVC.ClaimName != "orders-amber" || v.EmptyDir != nil {
		t.Errorf("data volume %+v: want the claim orders-amber", v)
	}
	if dep.Spec.Strategy.Type != "Recreate" {
		t.Errorf("strategy %q: one ReadWriteOnce claim needs Recreate", dep.Spec.Strategy.Type)
	}
}

// Bad values fail the render with what to fix.
func TestChartRefuses(t *testing.T) {
	for _, tc := range []struct {
		files []string
		sets  []string
		want  string
	}{
		{nil, nil, "set upstream"},
		{nil, []string{"mode=sidecar"}, "set upstream"},
		{gatewayValues, []string{"mode=ambassador"}, "mode"},
		{gatewayValues, []string{"proxy.durability=eventually"}, "durability"},
		{gatewayValues, []string{"proxy.brokerPorts=0"}, "brokerPorts"},
		{gatewayValues, []string{"archive.url=http://bucket"}, "url"},
		{sidecarValues, []string{"sidecar.replicas=2", "sidecar.data.persistentVolumeClaim.claimName=x"}, "ReadWriteOnce"},
	} {
		_, err := tryRender(t, tc.files, tc.sets...)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v %v: want an error naming %q, got %v", tc.files, tc.sets, tc.want, err)
		}
	}
}

// Credentials and keys come from Secrets the operator created; the chart
// renders no Secret and no secret value.
func TestSecretsReferenced(t *testing.T) {
	for _, files := range [][]string{gatewayValues, sidecarValues} {
		r := render(t, files, "archive.encryptionKeySecret=amber-archive-key", "sidecar.nativeSidecar=true")
		var pod podSpec
		if files[0] == gatewayValues[0] {
			pod = r.one(t, "StatefulSet").Spec.Template.Spec
		} else {
			pod = r.one(t, "Deployment").Spec.Template.Spec
		}
		c, ok := find(append(pod.InitContainers, pod.Containers...), "amber")
		if !ok {
			t.Fatal("no amber container")
		}
		for _, name := range []string{"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"} {
			e, ok := c.env(name)
			if !ok || e.Value != nil || e.ValueFrom == nil || e.ValueFrom.SecretKeyRef == nil || e.ValueFrom.SecretKeyRef.Name != "amber-s3" {
				t.Errorf("%v: %s must come from the Secret amber-s3, got %+v", files, name, e)
			}
		}
		keyFile, _ := flagValue(c.Args, "encryption-key-file")
		v := volume(t, pod, "encryption-key")
		if v.Secret == nil || v.Secret.SecretName != "amber-archive-key" || keyFile == "" {
			t.Errorf("%v: the archive key must be the Secret amber-archive-key mounted at --encryption-key-file (%q): %+v", files, keyFile, v)
		}
		for _, m := range c.VolumeMounts {
			if m.Name == "encryption-key" && (!m.ReadOnly || !strings.HasPrefix(keyFile, m.MountPath+"/")) {
				t.Errorf("%v: key mount %+v vs --encryption-key-file=%s", files, m, keyFile)
			}
		}
		checkNoInlineSecrets(t, r)
	}

	// Without a credentials Secret (IRSA, instance roles) no AWS key is set.
	r := render(t, gatewayValues, "archive.credentialsSecret=", "serviceAccount.annotations.eks\\.amazonaws\\.com/role-arn=arn:aws:iam::1:role/amber")
	c, _ := find(r.one(t, "StatefulSet").Spec.Template.Spec.Containers, "amber")
	if _, ok := c.env("AWS_SECRET_ACCESS_KEY"); ok {
		t.Errorf("AWS_SECRET_ACCESS_KEY set without archive.credentialsSecret")
	}
}

func TestDefaultTerminationGrace(t *testing.T) {
	for drain, want := range map[int]int{30: 90, 120: 270} {
		r := render(t, gatewayValues, fmt.Sprintf("proxy.drainTimeoutSeconds=%d", drain))
		pod := r.one(t, "StatefulSet").Spec.Template.Spec
		c, _ := find(pod.Containers, "amber")
		if got := drainSeconds(t, c.Args); got != drain {
			t.Errorf("--drain-timeout %ds, want %d", got, drain)
		}
		if pod.TerminationGracePeriodSeconds != want {
			t.Errorf("drain %ds: terminationGracePeriodSeconds %d, want %d", drain, pod.TerminationGracePeriodSeconds, want)
		}
	}
}

// checkHardened: non-root, read-only root filesystem, no privilege
// escalation, no capabilities, no service account token.
func checkHardened(t *testing.T, pod podSpec, c container) {
	t.Helper()
	sc := c.SecurityContext
	if pod.SecurityContext["runAsNonRoot"] != true || sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot || sc.RunAsUser == nil || *sc.RunAsUser == 0 {
		t.Errorf("want runAsNonRoot (pod and container) with a non-zero runAsUser: pod %v, container %+v", pod.SecurityContext, sc)
	}
	if sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem {
		t.Errorf("want readOnlyRootFilesystem")
	}
	if sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
		t.Errorf("want allowPrivilegeEscalation: false")
	}
	if strings.Join(sc.Capabilities.Drop, ",") != "ALL" {
		t.Errorf("capabilities drop %v, want [ALL]", sc.Capabilities.Drop)
	}
	if pod.SecurityContext["fsGroup"] == nil {
		t.Errorf("want an fsGroup so the non-root user can write the journal volume")
	}
	if pod.AutomountServiceAccountToken == nil || *pod.AutomountServiceAccountToken {
		t.Errorf("want automountServiceAccountToken: false (amber never calls the API server)")
	}
}

// checkProbes: liveness /healthz, readiness /readyz, on the admin port
// --admin-listen serves.
func checkProbes(t *testing.T, c container) {
	t.Helper()
	admin, _ := flagValue(c.Args, "admin-listen")
	adminPort := -1
	for _, p := range c.Ports {
		if p.Name == "admin" {
			adminPort = p.ContainerPort
		}
	}
	if !strings.HasSuffix(admin, ":"+strconv.Itoa(adminPort)) || strings.HasPrefix(admin, "127.") {
		t.Errorf("--admin-listen=%q vs admin port %d: the kubelet must reach it on the pod IP", admin, adminPort)
	}
	for name, pp := range map[string]struct {
		p    *probe
		path string
	}{"startup": {c.StartupProbe, "/healthz"}, "liveness": {c.LivenessProbe, "/healthz"}, "readiness": {c.ReadinessProbe, "/readyz"}} {
		if pp.p == nil || pp.p.HTTPGet == nil {
			t.Errorf("no %s probe: want GET %s on the admin port", name, pp.path)
		} else if g := pp.p.HTTPGet; g.Path != pp.path || g.Port != "admin" {
			t.Errorf("%s probe GET %s on port %v: want GET %s on the admin port", name, g.Path, g.Port, pp.path)
		}
	}
}

// services returns the client Service and the headless one.
func services(t *testing.T, r *rendered) (svc, headless manifest) {
	t.Helper()
	all := r.all("Service")
	if len(all) != 2 {
		t.Fatalf("want two Services (client and headless), got %v", r.kinds())
	}
	for _, s := range all {
		if s.Spec.ClusterIP == "None" {
			headless = s
		} else {
			svc = s
		}
	}
	if svc.Kind == "" || headless.Kind == "" {
		t.Fatalf("want one client and one headless Service, got %v", r.kinds())
	}
	return svc, headless
}

// checkPorts: the bootstrap port, then brokers ports from port+1, and the
// admin port only on the headless Service.
func checkPorts(t *testing.T, s manifest, port, brokers int, admin bool) {
	t.Helper()
	var want []int
	want = append(want, port)
	for i := 1; i <= brokers; i++ {
		want = append(want, port+i)
	}
	if admin {
		want = append(want, 9080)
	}
	var got []int
	for _, p := range s.Spec.Ports {
		got = append(got, p.Port)
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("Service %s ports %v, want %v", s.Metadata.Name, got, want)
	}
}

// checkTargets: every Service port targets a named container port with
// the same number (a client dials the port it was given).
func checkTargets(t *testing.T, s manifest, c container) {
	t.Helper()
	byName := map[string]int{}
	for _, p := range c.Ports {
		byName[p.Name] = p.ContainerPort
	}
	for _, p := range s.Spec.Ports {
		name, _ := p.TargetPort.(string)
		if cp, ok := byName[name]; !ok || cp != p.Port {
			t.Errorf("Service %s port %s/%d targets %v: no container port of that name and number", s.Metadata.Name, p.Name, p.Port, p.TargetPort)
		}
	}
}

// selects reports whether every selector label is among labels.
func selects(selector map[string]any, labels map[string]string) bool {
	if len(selector) == 0 {
		return false
	}
	if ml, ok := selector["matchLabels"].(map[string]any); ok {
		selector = ml
	}
	for k, v := range selector {
		if labels[k] != fmt.Sprint(v) {
			return false
		}
	}
	return true
}

func volume(t *testing.T, pod podSpec, name string) podVolume {
	t.Helper()
	for _, v := range pod.Volumes {
		if v.Name == name {
			return v
		}
	}
	t.Errorf("no pod volume %q", name)
	return podVolume{}
}

var durationSeconds = regexp.MustCompile(`^([0-9]+)s$`)

func drainSeconds(t *testing.T, args []string) int {
	t.Helper()
	d, _ := flagValue(args, "drain-timeout")
	m := durationSeconds.FindStringSubmatch(d)
	if m == nil {
		t.Fatalf("--drain-timeout=%q: want whole seconds", d)
	}
	n, _ := strconv.Atoi(m[1])
	return n
}

// checkNoInlineSecrets: no Secret objects, and no literal value for an
// environment variable that looks like a credential.
func checkNoInlineSecrets(t *testing.T, r *rendered) {
	t.Helper()
	if s := r.all("Secret"); len(s) != 0 {
		t.Errorf("the chart renders a Secret (%s): credentials must be referenced, never templated", s[0].Metadata.Name)
	}
	secretish := regexp.MustCompile(`(?i)secret|password|token|access_key|credential|private`)
	for _, o := range r.objs {
		pod := o.Spec.Template.Spec
		for _, c := range append(pod.InitContainers, pod.Containers...) {
			for _, e := range c.Env {
				if secretish.MatchString(e.Name) && e.Value != nil {
					t.Errorf("%s %s container %s: %s has a literal value; use valueFrom.secretKeyRef", o.Kind, o.Metadata.Name, c.Name, e.Name)
				}
			}
			for _, a := range c.Args {
				if secretish.MatchString(strings.SplitN(a, "=", 2)[0]) {
					t.Errorf("%s %s container %s: secret on the command line: %s", o.Kind, o.Metadata.Name, c.Name, a)
				}
			}
		}
	}
}

// checkRules: every alert expression queries metrics that exist.
func checkRules(t *testing.T, r *rendered) {
	t.Helper()
	known := exportedMetrics(t)
	rule := r.one(t, "PrometheusRule")
	n := 0
	for _, g := range rule.Spec.Groups {
		for _, rl := range g.Rules {
			n++
			if bad := unknownMetrics(rl.Expr, known); len(bad) > 0 {
				t.Errorf("alert %s queries %v, which nothing exports: %s", rl.Alert, bad, rl.Expr)
			}
		}
	}
	if n < 5 {
		t.Errorf("PrometheusRule has %d rules", n)
	}
}
