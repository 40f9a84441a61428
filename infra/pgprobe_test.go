package infra

import (
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"microk8s-platform/infra/app"
	mt "microk8s-platform/infra/internal/mocktest"
)

// PostgreSQL's probes run for real here against a real server. On a first
// boot the image initialises the data directory with a temporary server on
// the socket only (docker-library/postgres docker-entrypoint.sh,
// docker_temp_server_start: listen_addresses=”): readiness must not pass
// then, though the socket answers; once the server listens on TCP it must.
func TestPostgresReadinessWaitsForTCP(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("runs PostgreSQL as the postgres user (CI runs as root)")
	}
	bin := ""
	for _, dir := range append([]string{"/usr/local/bin"}, globOr("/usr/lib/postgresql/*/bin")...) {
		if _, err := os.Stat(filepath.Join(dir, "pg_ctl")); err == nil {
			bin = dir
			break
		}
	}
	if bin == "" {
		t.Fatal("PostgreSQL's server binaries are not installed (make deps)")
	}
	m, _ := runStack(t, "dev")
	pg := container(t, find(t, kubeObjects(m), "StatefulSet", app.Namespace, app.DatabaseService), "postgres")
	ready, live := mt.Strings(pg, "readinessProbe.exec.command"), mt.Strings(pg, "livenessProbe.exec.command")
	if len(ready) != 3 || len(live) != 3 || ready[0] != "bash" || live[0] != "bash" {
		t.Fatalf("probes %v, %v: want bash -c <script>", ready, live)
	}

	root, err := os.MkdirTemp("", "pgprobe-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(root)
	data, sock := filepath.Join(root, "data"), filepath.Join(root, "sock")
	must := func(name string, args ...string) {
		t.Helper()
		cmd := exec.Command("runuser", append([]string{"-u", "postgres", "--", filepath.Join(bin, name)}, args...)...)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("%s %v: %v\n%s", name, args, err, out)
		}
	}
	for _, d := range []string{root, sock} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			t.Fatal(err)
		}
		if out, err := exec.Command("chown", "postgres:postgres", d).CombinedOutput(); err != nil {
			t.Fatalf("chown: %v %s", err, out)
		}
	}
	must("initdb", "-D", data, "-U", "postgres", "--auth=trust")
	l, _ := net.Listen("tcp", "127.0.0.1:0")
	port := strconv.Itoa(l.Addr().(*net.TCPAddr).Port)
	l.Close()
	start := func(listen string) {
		must("pg_ctl", "-D", data, "-w", "-l", filepath.Join(root, "log"), "-o",
			"-p "+port+" -c listen_addresses='"+listen+"' -c unix_socket_directories="+sock, "start")
	}
	defer exec.Command("runuser", "-u", "postgres", "--", filepath.Join(bin, "pg_ctl"), "-D", data, "-m", "immediate", "stop").Run()
	// The probe's script, with the pod's socket directory and port
	// replaced by this server's.
	probe := func(argv []string) int {
		script := strings.ReplaceAll(argv[2], "/var/run/postgresql", sock)
		script = strings.ReplaceAll(script, "-p "+strconv.Itoa(app.PostgresPort), "-p "+port)
		if !strings.Contains(script, "-p ") {
			script = strings.Replace(script, "pg_isready", "pg_isready -p "+port, 1)
		}
		err := exec.Command(argv[0], argv[1], script).Run()
		if ee, ok := err.(*exec.ExitError); ok {
			return ee.ExitCode()
		}
		if err != nil {
			t.Fatal(err)
		}
		return 0
	}

	start("") // the first boot's temporary server: the socket only
	if probe(live) != 0 {
		t.Errorf("liveness %q fails against a running server", live)
	}
	if probe(ready) == 0 {
		t.Errorf("readiness %q passes while the server listens on the socket only", ready)
	}
	must("pg_ctl", "-D", data, "-w", "-m", "fast", "stop")
	start("127.0.0.1")
	if code := probe(ready); code != 0 {
		t.Errorf("readiness %q fails (exit %d) against the server on TCP", ready, code)
	}
}

func globOr(pattern string) []string {
	m, _ := filepath.Glob(pattern)
	return m
}
