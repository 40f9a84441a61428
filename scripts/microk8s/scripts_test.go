package microk8s

// The scripts run here against stand-ins (testdata/standins) for snap,
// microk8s, cloud-init, usermod, id, ip and curl, twice, to prove they are
// idempotent and converge. The stand-ins behave like the real tools where
// the scripts depend on them; the upstream facts, and where they come from:
//
//   - canonical/microk8s v1.35 microk8s-resources/certs/csr.conf.template:
//     [ alt_names ] with DNS.1-5 and IP.1-2, then #MOREIPS; v3_ext takes
//     subjectAltName=@alt_names. actions/common/utils.sh render_csr_conf
//     replaces #MOREIPS with the host's IPs numbered from IP.3, skipping
//     numbers the template uses; gen_server_cert runs `openssl req -config
//     csr.conf` and `openssl x509 -req -extfile csr.conf -extensions v3_ext`.
//     scripts/wrappers/refresh_certs.py: when that fails it prints "Failed to
//     produce new certificates. Reverting.", restores the backup, exits 20.
//     The stand-in runs the real openssl on the same files, so a DNS name in
//     an IP.n line fails as it does on a host.
//   - canonical/microk8s v1.35 microk8s-resources/default-args/kube-apiserver:
//     --authorization-mode=AlwaysAllow, no --anonymous-auth (default true).
//   - canonical/microk8s v1.35 scripts/wrappers/common/utils.py
//     unprotected_xable: an addon whose status is enabled is skipped with
//     "Addon core/<name> is already enabled"; get_status matches each addon's
//     check_status against `kubectl get ... clusterroles`.
//     canonical/microk8s-core-addons 1.35 addons.yaml: rbac's check_status is
//     clusterrole cluster-admin, which kube-apiserver's rbac/bootstrap-roles
//     post-start hook creates in any authorization mode
//     (kubernetes/kubernetes pkg/registry/rbac/rest/storage_rbac.go), so rbac
//     reads as enabled on a fresh MicroK8s and `microk8s enable rbac` does
//     nothing. addons/rbac/enable sets --authorization-mode=RBAC,Node.
//   - canonical/microk8s-core-addons 1.35 addons/metallb/enable: waits for
//     its controller in `while ! kubectl wait ...; do sleep 1; done` (no
//     bound); addresspool.yaml: IPAddressPool default-addresspool in
//     metallb-system with the given ranges.
//   - canonical/microk8s-core-addons 1.35 addons/observability/enable:
//     kube-prometheus-stack 77.6.2 by `helm upgrade --install kube-prom-stack`
//     in namespace observability; accepts --kube-prometheus-stack-values=FILE.
//     addons/hostpath-storage/storage.yaml: StorageClass microk8s-hostpath,
//     volumes under $SNAP_COMMON/default-storage on the host.
//   - prometheus-community/helm-charts kube-prometheus-stack-77.6.2 values.yaml
//     and templates/alertmanager: useExistingSecret stops the chart's own
//     config Secret (whose route ends in the 'null' receiver);
//     alertmanagerSpec.configSecret names ours; prometheusSpec.storageSpec
//     takes a volumeClaimTemplate (default {}: an emptyDir).
//   - snapcraft.io/docs/managing-updates (snapd 2.58+): `snap refresh --hold
//     <snap>` holds automatic refreshes forever and `snap list` shows "held";
//     snapcore/snapd#12073: holds apply to general refreshes, a specific
//     `snap refresh <snap>` still refreshes.

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

// host is a fake machine: the stand-ins first on PATH, and a SNAP_DATA with
// MicroK8s' certificate template, CA, a server certificate that does not yet
// name the public address, and the API server's shipped arguments.
type host struct {
	t      *testing.T
	state  string
	data   string
	common string
	env    []string
}

const publicIP = "203.0.113.10"

// csrTemplate is canonical/microk8s v1.35
// microk8s-resources/certs/csr.conf.template.
const csrTemplate = `[ req ]
default_bits = 2048
prompt = no
default_md = sha256
req_extensions = req_ext
distinguished_name = dn

[ dn ]
C = GB
ST = Canonical
L = Canonical
O = Canonical
OU = Canonical
CN = 127.0.0.1

[ req_ext ]
subjectAltName = @alt_names

[ alt_names ]
DNS.1 = kubernetes
DNS.2 = kubernetes.default
DNS.3 = kubernetes.default.svc
DNS.4 = kubernetes.default.svc.cluster
DNS.5 = kubernetes.default.svc.cluster.local
IP.1 = 127.0.0.1
IP.2 = 10.152.183.1
#MOREIPS

[ v3_ext ]
authorityKeyIdentifier=keyid,issuer:always
basicConstraints=CA:FALSE
keyUsage=keyEncipherment,dataEncipherment,digitalSignature
extendedKeyUsage=serverAuth,clientAuth
subjectAltName=@alt_names
`

// apiserverArgs are the lines of canonical/microk8s v1.35
// microk8s-resources/default-args/kube-apiserver the scripts care about.
const apiserverArgs = "--cert-dir=${SNAP_DATA}/certs\n--service-cluster-ip-range=10.152.183.0/24\n--authorization-mode=AlwaysAllow\n--secure-port=16443\n"

func newHost(t *testing.T) *host {
	t.Helper()
	h := &host{t: t, state: t.TempDir(), data: t.TempDir(), common: t.TempDir()}
	standins, _ := filepath.Abs("testdata/standins")
	certs := filepath.Join(h.data, "certs")
	must(t, os.MkdirAll(certs, 0o755))
	must(t, os.MkdirAll(filepath.Join(h.data, "args"), 0o755))
	must(t, os.WriteFile(filepath.Join(certs, "csr.conf.template"), []byte(csrTemplate), 0o644))
	must(t, os.WriteFile(filepath.Join(h.data, "args", "kube-apiserver"), []byte(apiserverArgs), 0o644))
	ssl := func(args ...string) {
		if out, err := exec.Command("openssl", args...).CombinedOutput(); err != nil {
			t.Fatalf("openssl %v: %v\n%s", args, err, out)
		}
	}
	// A CA and a server certificate as MicroK8s' first start makes them
	// (produce_certs): the template with the host's IPs, no public address.
	ssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "2", "-subj", "/CN=10.152.183.1",
		"-keyout", filepath.Join(certs, "ca.key"), "-out", filepath.Join(certs, "ca.crt"))
	ssl("ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", filepath.Join(certs, "server.key"))
	ssl("req", "-x509", "-key", filepath.Join(certs, "server.key"), "-days", "1", "-subj", "/CN=127.0.0.1",
		"-addext", "subjectAltName=DNS:kubernetes,IP:127.0.0.1,IP:10.152.183.1,IP:10.0.1.10", "-out", filepath.Join(certs, "server.crt"))
	h.env = append(os.Environ(),
		"PATH="+standins+":"+os.Getenv("PATH"),
		"STANDIN_STATE="+h.state, "SNAP_DATA="+h.data, "SNAP_COMMON="+h.common,
		"CHANNEL=1.35/stable", "PUBLIC_IP="+publicIP, "SSH_USER=ubuntu",
		"METALLB_ADDRESS=10.0.1.10", "OBSERVABILITY=true", "ALERTMANAGER_SECRET=platform-alertmanager",
		"TIMEOUT=5", "READY_TIMEOUT=5", "ENABLE_TIMEOUT=5", "CMD_TIMEOUT=5", "GRACE=1")
	return h
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// run runs a script; extra env entries override the defaults.
func (h *host) run(script string, extra ...string) (string, error) {
	cmd := exec.Command("bash", script)
	cmd.Env = append(append([]string{}, h.env...), extra...)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func (h *host) mustRun(script string, extra ...string) string {
	h.t.Helper()
	out, err := h.run(script, extra...)
	if err != nil {
		h.t.Fatalf("%s: %v\n%s", script, err, out)
	}
	return out
}

// mutations are the changes the stand-ins recorded, one per line, with the
// host's temporary paths replaced by $SNAP_COMMON.
func (h *host) mutations() []string {
	b, _ := os.ReadFile(filepath.Join(h.state, "mutations"))
	s := strings.ReplaceAll(strings.TrimSpace(string(b)), h.common, "$SNAP_COMMON")
	if s == "" {
		return nil
	}
	return strings.Split(s, "\n")
}

func (h *host) since(n int) []string { return h.mutations()[n:] }

func (h *host) file(rel string) string {
	h.t.Helper()
	b, err := os.ReadFile(filepath.Join(h.data, rel))
	if err != nil {
		h.t.Fatal(err)
	}
	return string(b)
}

func (h *host) sans() string {
	h.t.Helper()
	out, err := exec.Command("openssl", "x509", "-noout", "-ext", "subjectAltName", "-in", filepath.Join(h.data, "certs/server.crt")).Output()
	if err != nil {
		h.t.Fatalf("server.crt: %v", err)
	}
	return string(out)
}

func equal(t *testing.T, what string, got, want []string) {
	t.Helper()
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("%s:\n%s\nwant:\n%s", what, strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

var chain = []string{"wait-for-host.sh", "install-microk8s.sh", "enable-addons.sh"}

const valuesFlag = "--kube-prometheus-stack-values=$SNAP_COMMON/platform/kube-prometheus-stack-values.yaml"

func TestFreshHostGetsEverythingOnce(t *testing.T) {
	h := newHost(t)
	for _, s := range chain {
		h.mustRun(s)
	}
	equal(t, "first run changed", h.mutations(), []string{
		"snap install microk8s --classic --channel=1.35/stable",
		"snap refresh --hold microk8s",
		"microk8s refresh-certs --cert server.crt",
		"usermod -a -G microk8s ubuntu",
		"snap restart microk8s.daemon-kubelite",
		"microk8s enable dns",
		"microk8s enable hostpath-storage",
		"microk8s enable metallb 10.0.1.10-10.0.1.10",
		"microk8s enable observability " + valuesFlag,
	})
	if tpl := h.file("certs/csr.conf.template"); !strings.Contains(tpl, "IP.2 = 10.152.183.1\nIP.3 = "+publicIP+"\n#MOREIPS") {
		t.Fatalf("public IP not added after the last IP line:\n%s", tpl)
	}
	if s := h.sans(); !strings.Contains(s, "IP Address:"+publicIP) || !strings.Contains(s, "IP Address:10.0.1.10") {
		t.Fatalf("reissued certificate lacks the public or the host's IP: %s", s)
	}
	// The certificate is signed by MicroK8s' CA, as gen_server_cert does.
	if out, err := exec.Command("openssl", "verify", "-CAfile", filepath.Join(h.data, "certs/ca.crt"), filepath.Join(h.data, "certs/server.crt")).CombinedOutput(); err != nil {
		t.Fatalf("server.crt not from the CA: %s", out)
	}
}

func TestSecondRunChangesNothing(t *testing.T) {
	h := newHost(t)
	for _, s := range chain {
		h.mustRun(s)
	}
	before, tpl, cert, args := len(h.mutations()), h.file("certs/csr.conf.template"), h.file("certs/server.crt"), h.file("args/kube-apiserver")
	for _, s := range chain {
		out := h.mustRun(s)
		if s == "enable-addons.sh" && (!strings.Contains(out, "observability already enabled with these values") || !strings.Contains(out, "metallb already enabled with 10.0.1.10-10.0.1.10")) {
			t.Errorf("second run did not report addons as enabled:\n%s", out)
		}
	}
	equal(t, "second run changed", h.since(before), nil)
	if h.file("certs/csr.conf.template") != tpl || h.file("certs/server.crt") != cert || h.file("args/kube-apiserver") != args {
		t.Fatal("second run rewrote the certificate, its template or the API server's arguments")
	}
}

// The API server on 16443: RBAC, and anonymous requests refused (401). On a
// fresh MicroK8s `microk8s enable rbac` is a no-op (see the package facts),
// so the script sets the flag itself; where microk8s does run the addon, the
// addon's change is kept.
func TestAPIServerEnforcesRBACAndRefusesAnonymous(t *testing.T) {
	for _, reported := range []string{"enabled", "disabled"} {
		t.Run("rbac reported "+reported, func(t *testing.T) {
			h := newHost(t)
			out := h.mustRun("enable-addons.sh", "STANDIN_RBAC_REPORTED="+reported)
			args := h.file("args/kube-apiserver")
			if strings.Contains(args, "AlwaysAllow") || strings.Count(args, "--authorization-mode=RBAC,Node\n") != 1 {
				t.Errorf("authorization mode not RBAC,Node exactly once:\n%s", args)
			}
			if strings.Count(args, "--anonymous-auth=false\n") != 1 {
				t.Errorf("anonymous auth not off:\n%s", args)
			}
			if !strings.Contains(out, "anonymous requests get 401") {
				t.Errorf("output:\n%s", out)
			}
		})
	}
	// An API server that still answers anonymous requests fails the step.
	h := newHost(t)
	out, err := h.run("enable-addons.sh", "STANDIN_CURL_CODE=403")
	if err == nil || !strings.Contains(out, "answered an anonymous request with HTTP 403, want 401") {
		t.Fatalf("%v\n%s", err, out)
	}
}

func TestChannelMoves(t *testing.T) {
	cases := []struct {
		from, to string
		want     []string // mutations of the second run
		refused  string
	}{
		{"1.35/stable", "1.35/candidate", []string{"snap refresh microk8s --channel=1.35/candidate"}, ""},
		{"1.34/stable", "1.35/stable", []string{"snap refresh microk8s --channel=1.35/stable"}, ""},
		{"1.35/stable", "1.34/stable", nil, "refusing to move MicroK8s v1.35.2 (1.35/stable) to 1.34/stable: Kubernetes does not support downgrades"},
		{"1.33/stable", "1.35/stable", nil, "refusing to move MicroK8s v1.33.2 (1.33/stable) to 1.35/stable: Kubernetes upgrades one minor version at a time; set microk8sChannel to 1.34/stable"},
		{"1.35/stable", "2.0/stable", nil, "does not support downgrades"},
		{"1.35/stable", "1.35-strict/stable", nil, "strictly confined"},
	}
	for _, c := range cases {
		t.Run(c.from+" to "+c.to, func(t *testing.T) {
			h := newHost(t)
			h.mustRun("install-microk8s.sh", "CHANNEL="+c.from)
			n := len(h.mutations())
			out, err := h.run("install-microk8s.sh", "CHANNEL="+c.to)
			if c.refused != "" {
				if err == nil || !strings.Contains(out, c.refused) {
					t.Fatalf("not refused with %q: %v\n%s", c.refused, err, out)
				}
				if got := h.since(n); len(got) != 0 {
					t.Fatalf("refused move still changed %v", got)
				}
				return
			}
			if err != nil {
				t.Fatalf("%v\n%s", err, out)
			}
			equal(t, "channel change did", h.since(n), c.want)
			// The hold survives the explicit refresh: nothing to hold again.
			if !strings.Contains(h.mustRun("install-microk8s.sh", "CHANNEL="+c.to), "already tracks "+c.to) {
				t.Fatal("third run did not settle")
			}
		})
	}
}

func TestNewPublicIPReissuesTheCertificate(t *testing.T) {
	h := newHost(t)
	h.mustRun("install-microk8s.sh")
	n := len(h.mutations())
	h.mustRun("install-microk8s.sh", "PUBLIC_IP=198.51.100.7")
	equal(t, "new IP did", h.since(n), []string{"microk8s refresh-certs --cert server.crt"})
	tpl := h.file("certs/csr.conf.template")
	if !strings.Contains(tpl, "IP.3 = "+publicIP) || !strings.Contains(tpl, "IP.4 = 198.51.100.7") {
		t.Fatalf("template:\n%s", tpl)
	}
	if !strings.Contains(h.sans(), "IP Address:198.51.100.7") {
		t.Fatal("certificate lacks the new address")
	}
}

// sshHost may be a DNS name: it goes in as DNS.n and the certificate names it.
func TestDNSNameGoesInAsDNS(t *testing.T) {
	h := newHost(t)
	out := h.mustRun("install-microk8s.sh", "PUBLIC_IP=k8s.example.com")
	tpl := h.file("certs/csr.conf.template")
	if !strings.Contains(tpl, "DNS.5 = kubernetes.default.svc.cluster.local\nDNS.6 = k8s.example.com\nIP.1") || strings.Contains(tpl, "IP.3 = k8s") {
		t.Fatalf("template:\n%s", tpl)
	}
	if !strings.Contains(h.sans(), "DNS:k8s.example.com") {
		t.Fatalf("certificate lacks the name: %s\n%s", h.sans(), out)
	}
	n := len(h.mutations())
	h.mustRun("install-microk8s.sh", "PUBLIC_IP=k8s.example.com")
	equal(t, "second run with a name", h.since(n), nil)
}

// What the old script did with a name (IP.3 = <name>): the stand-in, like
// MicroK8s, fails in OpenSSL and reverts; the script must say so rather than
// carry on with a certificate that does not name the host.
func TestANameInAnIPLineFailsLikeMicroK8s(t *testing.T) {
	h := newHost(t)
	tplPath := filepath.Join(h.data, "certs/csr.conf.template")
	must(t, os.WriteFile(tplPath, []byte(strings.Replace(csrTemplate, "#MOREIPS", "IP.3 = k8s.example.com\n#MOREIPS", 1)), 0o644))
	cert := h.file("certs/server.crt")
	cmd := exec.Command("bash", "-c", "microk8s refresh-certs --cert server.crt")
	cmd.Env = h.env
	out, err := cmd.CombinedOutput()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 20 || !strings.Contains(string(out), "Failed to produce new certificates. Reverting.") {
		t.Fatalf("refresh-certs with a name in IP.3: %v\n%s", err, out)
	}
	if h.file("certs/server.crt") != cert {
		t.Fatal("refresh-certs did not revert server.crt")
	}
}

func TestMetalLBAddress(t *testing.T) {
	t.Run("a changed address is patched into default-addresspool", func(t *testing.T) {
		h := newHost(t)
		h.mustRun("enable-addons.sh")
		n := len(h.mutations())
		h.mustRun("enable-addons.sh", "METALLB_ADDRESS=10.0.1.11", "STANDIN_HOST_IPS=10.0.1.10 10.0.1.11")
		equal(t, "address change did", h.since(n), []string{`microk8s kubectl patch ipaddresspool {"spec":{"addresses":["10.0.1.11-10.0.1.11"]}}`})
		n = len(h.mutations())
		h.mustRun("enable-addons.sh", "METALLB_ADDRESS=10.0.1.11", "STANDIN_HOST_IPS=10.0.1.10 10.0.1.11")
		equal(t, "second run", h.since(n), nil)
	})
	t.Run("discovered from the default route when not given", func(t *testing.T) {
		h := newHost(t)
		out := h.mustRun("enable-addons.sh", "METALLB_ADDRESS=", "STANDIN_HOST_IPS=192.168.56.10", "STANDIN_ROUTE_SRC=192.168.56.10")
		if !slicesContains(h.mutations(), "microk8s enable metallb 192.168.56.10-192.168.56.10") || !strings.Contains(out, "from the host's default route") {
			t.Fatalf("%v\n%s", h.mutations(), out)
		}
	})
	t.Run("an address the host does not own is refused", func(t *testing.T) {
		h := newHost(t)
		out, err := h.run("enable-addons.sh", "METALLB_ADDRESS="+publicIP)
		if err == nil || !strings.Contains(out, "MetalLB address "+publicIP+" is not an address of this host") {
			t.Fatalf("%v\n%s", err, out)
		}
		for _, m := range h.mutations() {
			if strings.Contains(m, "metallb") {
				t.Fatalf("metallb enabled with a foreign address: %v", m)
			}
		}
	})
	t.Run("no route and no address", func(t *testing.T) {
		h := newHost(t)
		out, err := h.run("enable-addons.sh", "METALLB_ADDRESS=", "STANDIN_ROUTE_SRC=")
		if err == nil || !strings.Contains(out, "set sshPrivateIp") {
			t.Fatalf("%v\n%s", err, out)
		}
	})
}

func slicesContains(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

// Observability: Prometheus on a hostpath volume, Alertmanager from our
// Secret; values changed later (or a host enabled before we passed any) are
// applied to the installed release with helm, keeping the chart version.
func TestObservabilityValues(t *testing.T) {
	h := newHost(t)
	h.mustRun("enable-addons.sh", "PROMETHEUS_STORAGE=20Gi")
	b, err := os.ReadFile(filepath.Join(h.common, "platform/kube-prometheus-stack-values.yaml"))
	must(t, err)
	values := string(b)
	for _, want := range []string{
		"alertmanager:\n  alertmanagerSpec:\n    useExistingSecret: true\n    configSecret: platform-alertmanager\n",
		"    storageSpec:\n      volumeClaimTemplate:\n        spec:\n          storageClassName: microk8s-hostpath\n",
		"              storage: 20Gi\n", "    retention: 15d\n",
	} {
		if !strings.Contains(values, want) {
			t.Errorf("values lack %q:\n%s", want, values)
		}
	}
	n := len(h.mutations())
	h.mustRun("enable-addons.sh", "PROMETHEUS_STORAGE=30Gi")
	equal(t, "changed values did", h.since(n), []string{
		"microk8s helm3 upgrade kube-prom-stack kube-prometheus-stack --repo https://prometheus-community.github.io/helm-charts --namespace observability --version 77.6.2 --reuse-values --values $SNAP_COMMON/platform/kube-prometheus-stack-values.yaml",
	})
	n = len(h.mutations())
	h.mustRun("enable-addons.sh", "PROMETHEUS_STORAGE=30Gi")
	equal(t, "same values again", h.since(n), nil)
	n = len(h.mutations())
	h.mustRun("enable-addons.sh", "OBSERVABILITY=false", "PROMETHEUS_STORAGE=40Gi")
	equal(t, "observability off", h.since(n), nil)
}

// On a data disk: the class and Prometheus's static volume are declared
// once (a second run applies nothing), the volume is a hostPath of type
// Directory under the mount, and Prometheus's claim selects it, runs as the
// directory's owner and is capped below its size.
func TestPrometheusOnTheDataDisk(t *testing.T) {
	h := newHost(t)
	env := []string{"DATA_MOUNT=/var/lib/platform-data", "PROMETHEUS_STORAGE=10Gi", "PROMETHEUS_RETENTION_SIZE=8GB", "PROMETHEUS_UID=1000", "PROMETHEUS_GID=2000"}
	h.mustRun("enable-addons.sh", env...)
	if !slices.Contains(h.mutations(), "microk8s kubectl apply platform-data.yaml") {
		t.Fatalf("the data disk's volume was not applied: %v", h.mutations())
	}
	b, err := os.ReadFile(filepath.Join(h.state, "applied-platform-data.yaml"))
	must(t, err)
	dec := yaml.NewDecoder(strings.NewReader(string(b)))
	kinds := map[string]map[string]any{}
	for {
		var doc map[string]any
		if err := dec.Decode(&doc); err != nil {
			break
		}
		kinds[doc["kind"].(string)] = doc
	}
	sc, pv := kinds["StorageClass"], kinds["PersistentVolume"]
	if sc == nil || sc["provisioner"] != "kubernetes.io/no-provisioner" || sc["reclaimPolicy"] != "Retain" {
		t.Errorf("StorageClass: %v", sc)
	}
	spec, _ := pv["spec"].(map[string]any)
	hp, _ := spec["hostPath"].(map[string]any)
	if hp["path"] != "/var/lib/platform-data/prometheus" || hp["type"] != "Directory" || spec["persistentVolumeReclaimPolicy"] != "Retain" || spec["storageClassName"] != "platform-data" {
		t.Errorf("PersistentVolume: %v", pv)
	}
	values, err := os.ReadFile(filepath.Join(h.common, "platform/kube-prometheus-stack-values.yaml"))
	must(t, err)
	for _, want := range []string{
		"          storageClassName: platform-data\n          selector:\n            matchLabels:\n              microk8s-platform/data: prometheus\n",
		"    retentionSize: 8GB\n", "      runAsUser: 1000\n      runAsGroup: 2000\n      fsGroup: 2000\n",
	} {
		if !strings.Contains(string(values), want) {
			t.Errorf("values lack %q:\n%s", want, values)
		}
	}
	n := len(h.mutations())
	h.mustRun("enable-addons.sh", env...)
	equal(t, "second run", h.since(n), nil)
}

// Every wait is bounded and says what it waited for.
func TestEveryWaitIsBounded(t *testing.T) {
	cases := []struct {
		script, env, message string
	}{
		{"enable-addons.sh", "STANDIN_HANG=enable-metallb", "gave up after 1s waiting for the metallb addon (its controller Available and the address pool accepted)"},
		{"enable-addons.sh", "STANDIN_HANG=enable-observability", "gave up after 1s waiting for the observability addon"},
		{"enable-addons.sh", "STANDIN_HANG=ready", "waiting for MicroK8s to be ready"},
		{"install-microk8s.sh", "STANDIN_HANG=snap-install", "gave up after 1s waiting for the microk8s snap to install"},
		{"install-microk8s.sh", "STANDIN_HANG=ready", "MicroK8s not ready after 1s"},
	}
	for _, c := range cases {
		t.Run(c.script+" "+c.env, func(t *testing.T) {
			h := newHost(t)
			out, err := h.run(c.script, c.env, "ENABLE_TIMEOUT=1", "CMD_TIMEOUT=1", "READY_TIMEOUT=1")
			if err == nil || !strings.Contains(out, c.message) {
				t.Fatalf("want failure with %q: %v\n%s", c.message, err, out)
			}
		})
	}
}

func TestFailuresFailTheScript(t *testing.T) {
	cases := []struct {
		script, env, message string
	}{
		{"wait-for-host.sh", "STANDIN_CLOUD_INIT_RC=1", "cloud-init failed"},
		{"install-microk8s.sh", "STANDIN_FAIL=snap-install", "cannot install"},
		{"install-microk8s.sh", "STANDIN_READY_RC=1", "not ready after 5s"},
		{"enable-addons.sh", "STANDIN_FAIL=enable-metallb", "'microk8s enable metallb 10.0.1.10-10.0.1.10' failed (exit 1)"},
		{"install-microk8s.sh", "CHANNEL=", "CHANNEL"},
		{"kubeconfig.sh", "PUBLIC_IP=", "PUBLIC_IP"},
	}
	for _, c := range cases {
		t.Run(c.script+" "+c.env, func(t *testing.T) {
			h := newHost(t)
			out, err := h.run(c.script, c.env)
			if err == nil {
				t.Fatalf("succeeded:\n%s", out)
			}
			if !strings.Contains(out, c.message) {
				t.Fatalf("output lacks %q:\n%s", c.message, out)
			}
		})
	}
	// A failed addon stops the run: the ones after it are not enabled.
	h := newHost(t)
	h.run("enable-addons.sh", "STANDIN_FAIL=enable-metallb")
	for _, m := range h.mutations() {
		if strings.Contains(m, "observability") {
			t.Fatal("kept going after a failed addon")
		}
	}
}

func TestCloudInitRecoverableErrorsContinue(t *testing.T) {
	h := newHost(t)
	out := h.mustRun("wait-for-host.sh", "STANDIN_CLOUD_INIT_RC=2")
	if !strings.Contains(out, "recoverable") || !strings.Contains(out, "host ready") {
		t.Fatalf("output:\n%s", out)
	}
}

func TestKubeconfigPointsAtThePublicAddress(t *testing.T) {
	for _, addr := range []string{publicIP, "k8s.example.com"} {
		h := newHost(t)
		out := h.mustRun("kubeconfig.sh", "PUBLIC_IP="+addr)
		if !strings.Contains(out, "    server: https://"+addr+":16443\n") || strings.Contains(out, "10.0.1.10") {
			t.Fatalf("kubeconfig:\n%s", out)
		}
		if !strings.Contains(out, "client-certificate-data: Q0VSVAo=") {
			t.Fatal("credentials lost")
		}
	}
}

func TestEmbeddedScriptsAndHashes(t *testing.T) {
	for _, s := range append(chain, "kubeconfig.sh", "api-address.sh") {
		if !strings.HasPrefix(Script(s), "#!/usr/bin/env bash\n") {
			t.Errorf("%s not embedded", s)
		}
		if !regexp.MustCompile(`^[0-9a-f]{64}$`).MatchString(Hash(s)) {
			t.Errorf("%s hash %q", s, Hash(s))
		}
	}
	if Hash("install-microk8s.sh") == Hash("enable-addons.sh") {
		t.Error("different scripts hash the same")
	}
}
