package deploy_test

import (
	"bufio"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"
)

// These tests need no Helm: the dashboard, the Dockerfile, the compose
// file and the systemd unit, each checked against the code it runs.

func TestDashboard(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(root(t), "deploy", "grafana", "amber-dashboard.json"))
	if err != nil {
		t.Fatal(err)
	}
	type target struct {
		Expr       string `json:"expr"`
		Datasource struct {
			UID string `json:"uid"`
		} `json:"datasource"`
	}
	type panel struct {
		ID      int      `json:"id"`
		Type    string   `json:"type"`
		Title   string   `json:"title"`
		Targets []target `json:"targets"`
	}
	var d struct {
		UID        string  `json:"uid"`
		Title      string  `json:"title"`
		Panels     []panel `json:"panels"`
		Templating struct {
			List []struct {
				Name string `json:"name"`
				Type string `json:"type"`
			} `json:"list"`
		} `json:"templating"`
	}
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatalf("dashboard JSON: %v", err)
	}
	if d.UID == "" || d.Title == "" {
		t.Errorf("dashboard needs a uid and a title (provisioning keys on the uid)")
	}
	vars := map[string]string{}
	for _, v := range d.Templating.List {
		vars[v.Name] = v.Type
	}
	if vars["datasource"] != "datasource" {
		t.Errorf("want a datasource variable, so the dashboard imports into any Grafana: %v", vars)
	}

	known := exportedMetrics(t)
	used := map[string]bool{}
	ids := map[int]string{}
	for _, p := range d.Panels {
		if other, dup := ids[p.ID]; dup {
			t.Errorf("panels %q and %q share id %d", other, p.Title, p.ID)
		}
		ids[p.ID] = p.Title
		if p.Type != "row" && len(p.Targets) == 0 {
			t.Errorf("panel %q queries nothing", p.Title)
		}
		for _, tg := range p.Targets {
			if tg.Datasource.UID != "${datasource}" {
				t.Errorf("panel %q: datasource %q, want ${datasource}", p.Title, tg.Datasource.UID)
			}
			if bad := unknownMetrics(tg.Expr, known); len(bad) > 0 {
				t.Errorf("panel %q queries %v, which nothing exports: %s", p.Title, bad, tg.Expr)
			}
			if !strings.Contains(tg.Expr, `job=~"$job"`) || !strings.Contains(tg.Expr, `instance=~"$instance"`) {
				t.Errorf("panel %q ignores the job and instance variables: %s", p.Title, tg.Expr)
			}
			for _, n := range amberToken.FindAllString(tg.Expr, -1) {
				used[n] = true
			}
		}
	}
	// What an operator must see (docs/OPERATIONS.md, "What to alert on").
	for _, m := range []string{
		"amber_proxy_requests_total", "amber_proxy_request_duration_seconds_bucket", "amber_proxy_connections_active",
		"amber_journal_commits_total", "amber_journal_commit_seconds_total", "amber_journal_healthy",
		"amber_upload_backlog_bytes", "amber_upload_consecutive_failures",
		"amber_tee_dropped_batches_total", "amber_journal_refused_total", "amber_backfill_failed_passes_total",
	} {
		if !used[m] {
			t.Errorf("no panel shows %s", m)
		}
	}
}

// The builder's Go is go.mod's minor version; the image is static and
// runs as a numeric non-root user.
func TestDockerfile(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(root(t), "deploy", "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	df := string(b)
	mod, err := os.ReadFile(filepath.Join(root(t), "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	goLine := regexp.MustCompile(`(?m)^go ([0-9]+\.[0-9]+)`).FindStringSubmatch(string(mod))
	if goLine == nil {
		t.Fatal("no go line in go.mod")
	}
	if !strings.Contains(df, "ARG GO_VERSION="+goLine[1]+"\n") || !strings.Contains(df, "golang:${GO_VERSION}") {
		t.Errorf("the builder must use golang:%s, go.mod's Go", goLine[1])
	}
	for _, want := range []string{"CGO_ENABLED=0", "-trimpath", "./cmd/amber", "COPY third_party/"} {
		if !strings.Contains(df, want) {
			t.Errorf("Dockerfile lacks %q", want)
		}
	}
	froms := regexp.MustCompile(`(?m)^FROM .*$`).FindAllString(df, -1)
	if len(froms) < 2 {
		t.Fatalf("want a multi-stage build, got %q", froms)
	}
	final := froms[len(froms)-1]
	if !strings.Contains(final, "distroless/static") && !strings.Contains(final, "scratch") {
		t.Errorf("final stage %q: want distroless static or scratch", final)
	}
	users := regexp.MustCompile(`(?m)^USER ([0-9]+)(:[0-9]+)?$`).FindAllStringSubmatch(df[strings.LastIndex(df, final):], -1)
	if len(users) != 1 || users[0][1] == "0" {
		t.Errorf("final stage: want one numeric non-root USER (runAsNonRoot can check only numbers), got %q", users)
	}
	// The replace directive's target must be in the first COPY of sources.
	if strings.Contains(string(mod), "=> ./third_party/") && strings.Index(df, "COPY third_party/") > strings.Index(df, "go mod download") {
		t.Errorf("go mod download runs before third_party/ (a replace target) is copied")
	}
}

func TestCompose(t *testing.T) {
	path := filepath.Join(root(t), "deploy", "docker-compose.yml")
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var c struct {
		Services map[string]struct {
			Image string `yaml:"image"`
			Build *struct {
				Context    string `yaml:"context"`
				Dockerfile string `yaml:"dockerfile"`
			} `yaml:"build"`
			Command   []string  `yaml:"command"`
			DependsOn yaml.Node `yaml:"depends_on"` // a list or a map
		} `yaml:"services"`
	}
	if err := yaml.Unmarshal(b, &c); err != nil {
		t.Fatalf("compose file: %v", err)
	}
	for _, name := range []string{"kafka", "minio", "amber", "producer"} {
		if _, ok := c.Services[name]; !ok {
			t.Errorf("no %s service", name)
		}
	}
	for name, s := range c.Services {
		if s.Build != nil {
			df := filepath.Join(filepath.Dir(path), s.Build.Context, s.Build.Dockerfile)
			if _, err := os.Stat(df); err != nil {
				t.Errorf("%s builds from %s: %v", name, df, err)
			}
			continue
		}
		if i := strings.LastIndex(s.Image, ":"); i < 0 || strings.HasSuffix(s.Image, ":latest") {
			t.Errorf("%s: image %q: pin a tag", name, s.Image)
		}
		if strings.HasPrefix(s.Image, "minio/") {
			t.Errorf("%s: %s is gone from Docker Hub; use quay.io/minio/", name, s.Image)
		}
	}
	amber := c.Services["amber"]
	checkProxyFlags(t, "compose amber service", amber.Command)
	for flag, want := range map[string]string{"upstream": "kafka:9092", "advertise-host": "amber", "listen": "0.0.0.0:9092"} {
		if got, _ := flagValue(amber.Command, flag); got != want {
			t.Errorf("compose amber --%s=%q, want %q", flag, got, want)
		}
	}
	var deps map[string]any
	if err := amber.DependsOn.Decode(&deps); err != nil || deps["minio-init"] == nil {
		t.Errorf("amber must wait for the bucket (amber proxy refuses a missing one)")
	}
	producer := strings.Join(c.Services["producer"].Command, " ")
	if !strings.Contains(producer, "bootstrap.servers=amber:9092") {
		t.Errorf("the producer must know only Amber: %s", producer)
	}
}

func TestSystemdUnit(t *testing.T) {
	f, err := os.Open(filepath.Join(root(t), "deploy", "systemd", "amber.service"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	// key -> values, in order; continuation lines joined.
	unit := map[string][]string{}
	sc := bufio.NewScanner(f)
	var cont string
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if strings.HasPrefix(line, "#") || strings.HasPrefix(line, "[") || line == "" {
			continue
		}
		if l, ok := strings.CutSuffix(line, "\\"); ok {
			cont += l + " "
			continue
		}
		line, cont = cont+line, ""
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			t.Fatalf("unit line %q", line)
		}
		unit[k] = append(unit[k], v)
	}
	one := func(k string) string {
		if v := unit[k]; len(v) > 0 {
			return v[len(v)-1]
		}
		return ""
	}
	for k, want := range map[string]string{
		"DynamicUser": "yes", "StateDirectory": "amber", "ProtectSystem": "strict", "NoNewPrivileges": "yes",
		"Restart": "on-failure", "KillSignal": "SIGTERM", "EnvironmentFile": "/etc/amber/amber.env",
	} {
		if got := one(k); got != want {
			t.Errorf("%s=%q, want %q", k, got, want)
		}
	}
	args := strings.Fields(one("ExecStart"))
	if len(args) < 2 || args[0] != "/usr/local/bin/amber" {
		t.Fatalf("ExecStart %q", one("ExecStart"))
	}
	args = args[1:]
	if data, _ := flagValue(args, "data"); data != "%S/amber" {
		t.Errorf("--data=%q, want the StateDirectory %%S/amber", data)
	}
	// systemd specifiers, as systemd would expand them.
	for i, a := range args {
		args[i] = strings.NewReplacer("%H", "amber-host", "%S", "/var/lib").Replace(a)
	}
	checkProxyFlags(t, "systemd ExecStart", args)

	drain, _ := flagValue(args, "drain-timeout")
	d, err := time.ParseDuration(drain)
	if err != nil {
		t.Fatalf("--drain-timeout=%q: %v", drain, err)
	}
	stop, err := time.ParseDuration(one("TimeoutStopSec"))
	if err != nil {
		n, nerr := strconv.Atoi(one("TimeoutStopSec"))
		if nerr != nil {
			t.Fatalf("TimeoutStopSec=%q: %v", one("TimeoutStopSec"), err)
		}
		stop = time.Duration(n) * time.Second
	}
	if stop < 2*d+10*time.Second {
		t.Errorf("TimeoutStopSec=%s: want at least 2 × --drain-timeout (%s: the drain, then the final upload) + 10s", stop, d)
	}
}
