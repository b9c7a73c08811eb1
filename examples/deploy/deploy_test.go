// Package deploy_test checks the deployment examples in this directory:
// the systemd unit with systemd-analyze, the nginx snippet with nginx -t,
// the Prometheus config and rules with promtool (each when installed), and
// every metric the rules and the Grafana dashboard use against what a real
// killfeed serves at /metrics.
package deploy_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"io"
	"math/big"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"go.uber.org/goleak"
	"go.yaml.in/yaml/v3"

	"github.com/killfeed/killfeed/app"
	"github.com/killfeed/killfeed/internal/fixture"
	"github.com/killfeed/killfeed/transport"
)

func read(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// checker is the path of the tool that checks a file. The test task
// installs every one (go tool task packages), so a missing one fails the
// test rather than skipping the check.
func checker(t *testing.T, name string) string {
	t.Helper()
	path, err := exec.LookPath(name)
	if err != nil {
		t.Fatalf("%s is not installed (go tool task packages installs it): %v", name, err)
	}
	return path
}

// TestSystemdUnit runs systemd-analyze verify on the unit, with ExecStart
// pointed at a binary that exists here. systemd-analyze exits 0 on unknown
// keys and bad values, so any output fails the test.
func TestSystemdUnit(t *testing.T) {
	unit := string(read(t, "killfeed.service"))
	for _, want := range []string{"DynamicUser=yes", "StateDirectory=killfeed", "ProtectSystem=strict", "NoNewPrivileges=yes", "ExecStart=/usr/local/bin/killfeed serve"} {
		if !strings.Contains(unit, want) {
			t.Errorf("unit lacks %s", want)
		}
	}
	analyze := checker(t, "systemd-analyze")
	bin, err := os.Executable() // any executable file will do
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "killfeed.service")
	if err := os.WriteFile(path, []byte(strings.ReplaceAll(unit, "/usr/local/bin/killfeed", bin)), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(analyze, "verify", path).CombinedOutput()
	if err != nil || len(bytes.TrimSpace(out)) > 0 {
		t.Errorf("systemd-analyze verify: %v\n%s", err, out)
	}
}

// TestNginx runs nginx -t on the snippet inside a wrapper config, with a
// self-signed certificate in place of the real one.
func TestNginx(t *testing.T) {
	conf := string(read(t, "nginx.conf"))
	for _, want := range []string{"proxy_set_header Upgrade $http_upgrade", "proxy_http_version 1.1", "proxy_read_timeout 75s"} {
		if !strings.Contains(conf, want) {
			t.Errorf("nginx.conf lacks %s", want)
		}
	}
	// proxy_read_timeout must outlast the longest long-poll: wait=30 plus
	// the 5 s request timeout.
	m := regexp.MustCompile(`proxy_read_timeout (\d+)s`).FindStringSubmatch(conf)
	if m == nil {
		t.Error("nginx.conf sets no proxy_read_timeout")
	} else if s, _ := strconv.Atoi(m[1]); s <= int((transport.MaxWait + 5*time.Second).Seconds()) {
		t.Errorf("proxy_read_timeout %ss does not outlast a long-poll of wait=%s plus the request timeout", m[1], transport.MaxWait)
	}
	nginx := checker(t, "nginx")
	dir := t.TempDir()
	cert, key := selfSigned(t, dir)
	conf = strings.ReplaceAll(conf, "/etc/ssl/certs/killfeed.example.org.pem", cert)
	conf = strings.ReplaceAll(conf, "/etc/ssl/private/killfeed.example.org.key", key)
	snippet := filepath.Join(dir, "killfeed.conf")
	if err := os.WriteFile(snippet, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	wrapper := filepath.Join(dir, "nginx.conf")
	w := "pid " + filepath.Join(dir, "nginx.pid") + ";\nerror_log " + filepath.Join(dir, "error.log") + ";\n" +
		"events {}\nhttp {\n  access_log off;\n  client_body_temp_path " + dir + "/body;\n  proxy_temp_path " + dir + "/proxy;\n" +
		"  fastcgi_temp_path " + dir + "/fastcgi;\n  uwsgi_temp_path " + dir + "/uwsgi;\n  scgi_temp_path " + dir + "/scgi;\n" +
		"  include " + snippet + ";\n}\n"
	if err := os.WriteFile(wrapper, []byte(w), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(nginx, "-t", "-p", dir, "-c", wrapper).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "test is successful") {
		t.Errorf("nginx -t: %v\n%s", err, out)
	}
}

func selfSigned(t *testing.T, dir string) (certPath, keyPath string) {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "killfeed.example.org"},
		NotBefore: time.Now(), NotAfter: time.Now().Add(time.Hour), DNSNames: []string{"killfeed.example.org"}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	certPath, keyPath = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certPath, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyPath, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o600); err != nil {
		t.Fatal(err)
	}
	return certPath, keyPath
}

// rules is the shape of a Prometheus rule file.
type rules struct {
	Groups []struct {
		Name  string `yaml:"name"`
		Rules []struct {
			Record string `yaml:"record"`
			Alert  string `yaml:"alert"`
			Expr   string `yaml:"expr"`
		} `yaml:"rules"`
	} `yaml:"groups"`
}

// TestPrometheusConfig parses the scrape config and the rules, and runs
// promtool on them when it is installed.
func TestPrometheusConfig(t *testing.T) {
	var cfg struct {
		RuleFiles     []string `yaml:"rule_files"`
		ScrapeConfigs []struct {
			JobName       string `yaml:"job_name"`
			MetricsPath   string `yaml:"metrics_path"`
			StaticConfigs []struct {
				Targets []string `yaml:"targets"`
			} `yaml:"static_configs"`
		} `yaml:"scrape_configs"`
	}
	if err := yaml.Unmarshal(read(t, "prometheus.yml"), &cfg); err != nil {
		t.Fatal(err)
	}
	if len(cfg.ScrapeConfigs) != 1 || cfg.ScrapeConfigs[0].JobName != "killfeed" || cfg.ScrapeConfigs[0].MetricsPath != "/metrics" {
		t.Errorf("scrape configs: %+v", cfg.ScrapeConfigs)
	}
	for _, f := range cfg.RuleFiles {
		var r rules
		if err := yaml.Unmarshal(read(t, f), &r); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		if len(r.Groups) == 0 {
			t.Errorf("%s has no rule groups", f)
		}
	}
	promtool := checker(t, "promtool")
	out, err := exec.Command(promtool, "check", "config", "prometheus.yml").CombinedOutput()
	if err != nil {
		t.Errorf("promtool check config: %v\n%s", err, out)
	}
}

// promqlName matches a metric name in a PromQL expression.
var promqlName = regexp.MustCompile(`\b((?:killfeed|go|process)_[a-zA-Z0-9_]*)\b`)

// referenced lists every metric name the dashboard and the rules use.
func referenced(t *testing.T) map[string][]string {
	t.Helper()
	refs := map[string][]string{}
	add := func(where, expr string) {
		for _, m := range promqlName.FindAllStringSubmatch(expr, -1) {
			refs[m[1]] = append(refs[m[1]], where)
		}
	}
	var dash struct {
		Panels []struct {
			Title   string `json:"title"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	if err := json.Unmarshal(read(t, "grafana-dashboard.json"), &dash); err != nil {
		t.Fatalf("grafana-dashboard.json: %v", err)
	}
	if len(dash.Panels) == 0 {
		t.Fatal("the dashboard has no panels")
	}
	for _, p := range dash.Panels {
		if len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", p.Title)
		}
		for _, q := range p.Targets {
			add("dashboard panel "+p.Title, q.Expr)
		}
	}
	var r rules
	if err := yaml.Unmarshal(read(t, "killfeed.rules.yml"), &r); err != nil {
		t.Fatal(err)
	}
	for _, g := range r.Groups {
		for _, rule := range g.Rules {
			add("rule "+rule.Record+rule.Alert, rule.Expr)
		}
	}
	return refs
}

// TestMetricNamesExist starts a real killfeed (disk storage, so that
// Pebble's metrics are there), makes it do a little of everything, and
// checks that every metric the dashboard and the rules use is served.
func TestMetricNamesExist(t *testing.T) {
	a, err := app.Start(app.Config{Listen: "127.0.0.1:0", DataDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := a.Shutdown(ctx); err != nil {
			t.Error(err)
		}
	}()
	res, err := http.Post(a.URL()+"/api/killmails", "application/json", bytes.NewReader(fixture.Lines()[0]))
	if err != nil {
		t.Fatal(err)
	}
	_ = res.Body.Close()
	res, err = http.Get(a.URL() + "/api/killfeed?client_id=deploy&systems=30000142")
	if err != nil {
		t.Fatal(err)
	}
	_ = res.Body.Close()
	if _, err := a.Actors().CollectGarbage(context.Background()); err != nil {
		t.Fatal(err)
	}
	res, err = http.Get(a.URL() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(res.Body)
	_ = res.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	served := map[string]bool{}
	for name, f := range fams {
		served[name] = true
		if f.GetType().String() == "HISTOGRAM" {
			for _, s := range []string{"_bucket", "_count", "_sum"} {
				served[name+s] = true
			}
		}
	}
	refs := referenced(t)
	if len(refs) < 10 {
		t.Fatalf("only %d metric names found in the dashboard and rules", len(refs))
	}
	names := slices.Sorted(func(yield func(string) bool) {
		for n := range refs {
			if !yield(n) {
				return
			}
		}
	})
	for _, n := range names {
		if !served[n] {
			t.Errorf("%s (used by %s) is not served at /metrics", n, strings.Join(refs[n], ", "))
		}
	}
}

// TestMain checks that the service the tests start leaves no goroutine
// behind.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		goleak.IgnoreTopFunction("net/http.(*persistConn).readLoop"),
		goleak.IgnoreTopFunction("net/http.(*persistConn).writeLoop"),
		goleak.IgnoreTopFunction("internal/poll.runtime_pollWait"),
	)
}
