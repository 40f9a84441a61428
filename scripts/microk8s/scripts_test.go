package microk8s

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// host is a fake machine: stand-in snap, microk8s, cloud-init, usermod and id
// first on PATH, and a SNAP_DATA with MicroK8s' certificate template and a
// server certificate that does not yet name the public IP.
type host struct {
	t     *testing.T
	state string
	data  string
	env   []string
}

const publicIP = "203.0.113.10"

func newHost(t *testing.T) *host {
	t.Helper()
	h := &host{t: t, state: t.TempDir(), data: t.TempDir()}
	standins, _ := filepath.Abs("testdata/standins")
	certs := filepath.Join(h.data, "certs")
	os.MkdirAll(certs, 0o755)
	template := "[ req ]\ndistinguished_name = req_distinguished_name\n\n[ alt_names ]\nDNS.1 = kubernetes\nDNS.2 = kubernetes.default\nIP.1 = 127.0.0.1\nIP.2 = 10.152.183.1\n#MOREIPS\n\n[ v3_ext ]\nsubjectAltName=@alt_names\n"
	os.WriteFile(filepath.Join(certs, "csr.conf.template"), []byte(template), 0o644)
	out, err := exec.Command("openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "1",
		"-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1,IP:10.152.183.1",
		"-keyout", filepath.Join(h.state, "k"), "-out", filepath.Join(certs, "server.crt")).CombinedOutput()
	if err != nil {
		t.Fatalf("openssl: %v\n%s", err, out)
	}
	h.env = append(os.Environ(),
		"PATH="+standins+":"+os.Getenv("PATH"),
		"STANDIN_STATE="+h.state, "SNAP_DATA="+h.data,
		"CHANNEL=1.32/stable", "PUBLIC_IP="+publicIP, "SSH_USER=ubuntu",
		"ADDONS=dns hostpath-storage metallb:10.0.1.10-10.0.1.10 observability",
		"TIMEOUT=5", "READY_TIMEOUT=5")
	return h
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

func (h *host) mutations() []string {
	b, _ := os.ReadFile(filepath.Join(h.state, "mutations"))
	return strings.Fields(strings.ReplaceAll(strings.TrimSpace(string(b)), " ", "_"))
}

func (h *host) file(rel string) string {
	b, err := os.ReadFile(filepath.Join(h.data, rel))
	if err != nil {
		h.t.Fatal(err)
	}
	return string(b)
}

var chain = []string{"wait-for-host.sh", "install-microk8s.sh", "enable-addons.sh"}

func TestFreshHostGetsEverythingOnce(t *testing.T) {
	h := newHost(t)
	for _, s := range chain {
		h.mustRun(s)
	}
	want := []string{
		"snap_install_microk8s_--classic_--channel=1.32/stable",
		"microk8s_refresh-certs_--cert_server.crt",
		"usermod_-a_-G_microk8s_ubuntu",
		"microk8s_enable_dns",
		"microk8s_enable_hostpath-storage",
		"microk8s_enable_metallb:10.0.1.10-10.0.1.10",
		"microk8s_enable_observability",
	}
	if got := h.mutations(); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("first run changed:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if tpl := h.file("certs/csr.conf.template"); !strings.Contains(tpl, "IP.2 = 10.152.183.1\nIP.3 = "+publicIP+"\n#MOREIPS") {
		t.Fatalf("public IP not added after the last IP line:\n%s", tpl)
	}
	out, err := exec.Command("openssl", "x509", "-noout", "-ext", "subjectAltName", "-in", filepath.Join(h.data, "certs/server.crt")).Output()
	if err != nil || !strings.Contains(string(out), "IP Address:"+publicIP) {
		t.Fatalf("reissued certificate lacks the public IP: %s %v", out, err)
	}
}

func TestSecondRunChangesNothing(t *testing.T) {
	h := newHost(t)
	for _, s := range chain {
		h.mustRun(s)
	}
	before, tpl := len(h.mutations()), h.file("certs/csr.conf.template")
	cert := h.file("certs/server.crt")
	for _, s := range chain {
		out := h.mustRun(s)
		if s == "enable-addons.sh" && !strings.Contains(out, "observability already enabled") {
			t.Errorf("second run did not report addons as enabled:\n%s", out)
		}
	}
	if after := h.mutations(); len(after) != before {
		t.Fatalf("second run changed things: %v", after[before:])
	}
	if h.file("certs/csr.conf.template") != tpl || h.file("certs/server.crt") != cert {
		t.Fatal("second run rewrote the certificate or its template")
	}
}

func TestChannelChangeRefreshesTheSnap(t *testing.T) {
	h := newHost(t)
	h.mustRun("install-microk8s.sh")
	n := len(h.mutations())
	h.mustRun("install-microk8s.sh", "CHANNEL=1.33/stable")
	got := h.mutations()[n:]
	if len(got) != 1 || got[0] != "snap_refresh_microk8s_--channel=1.33/stable" {
		t.Fatalf("channel change did %v", got)
	}
}

func TestNewPublicIPReissuesTheCertificate(t *testing.T) {
	h := newHost(t)
	h.mustRun("install-microk8s.sh")
	n := len(h.mutations())
	h.mustRun("install-microk8s.sh", "PUBLIC_IP=198.51.100.7")
	got := h.mutations()[n:]
	if len(got) != 1 || got[0] != "microk8s_refresh-certs_--cert_server.crt" {
		t.Fatalf("new IP did %v", got)
	}
	tpl := h.file("certs/csr.conf.template")
	if !strings.Contains(tpl, "IP.3 = "+publicIP) || !strings.Contains(tpl, "IP.4 = 198.51.100.7") {
		t.Fatalf("template:\n%s", tpl)
	}
}

func TestFailuresFailTheScript(t *testing.T) {
	cases := []struct {
		script, env, message string
	}{
		{"wait-for-host.sh", "STANDIN_CLOUD_INIT_RC=1", "cloud-init failed"},
		{"install-microk8s.sh", "STANDIN_FAIL=snap-install", "cannot install"},
		{"install-microk8s.sh", "STANDIN_READY_RC=1", "not ready after 5s"},
		{"enable-addons.sh", "STANDIN_FAIL=enable-metallb", "'microk8s enable metallb:10.0.1.10-10.0.1.10' failed"},
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

func TestKubeconfigPointsAtThePublicIP(t *testing.T) {
	h := newHost(t)
	out := h.mustRun("kubeconfig.sh")
	if !strings.Contains(out, "    server: https://"+publicIP+":16443\n") || strings.Contains(out, "10.0.1.10") {
		t.Fatalf("kubeconfig:\n%s", out)
	}
	if !strings.Contains(out, "client-certificate-data: Q0VSVAo=") {
		t.Fatal("credentials lost")
	}
}

func TestEmbeddedScriptsAndHashes(t *testing.T) {
	for _, s := range append(chain, "kubeconfig.sh") {
		if !strings.HasPrefix(Script(s), "#!/usr/bin/env bash\n") {
			t.Errorf("%s not embedded", s)
		}
		if len(Hash(s)) != 64 {
			t.Errorf("%s hash %q", s, Hash(s))
		}
	}
	if Hash("install-microk8s.sh") == Hash("enable-addons.sh") {
		t.Error("different scripts hash the same")
	}
}
