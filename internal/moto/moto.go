// Package moto starts the moto AWS emulator (moto_server, preinstalled on
// the CI machine) on 127.0.0.1 for a test, points the AWS SDK's standard
// environment variables at it, and stops it when the test ends. Its
// account's id is Account, and it accepts any credentials.
package moto

import (
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"syscall"
	"testing"
	"time"
)

// Region the emulated account lives in.
const Region = "us-east-1"

// Account is moto's default account id.
const Account = "123456789012"

// Option changes how moto_server starts.
type Option func(*exec.Cmd)

// Env sets an environment variable of moto_server (MOTO_AMIS_PATH: the
// images its EC2 knows).
func Env(key, value string) Option {
	return func(c *exec.Cmd) { c.Env = append(c.Env, key+"="+value) }
}

// Start runs moto_server and returns its endpoint URL. It sets
// AWS_ENDPOINT_URL, fake credentials and the region in the test's
// environment, so SDK default configuration and child processes use it.
func Start(t *testing.T, opts ...Option) string {
	t.Helper()
	url := Server(t, opts...)
	for k, v := range map[string]string{
		"AWS_ENDPOINT_URL":            url,
		"AWS_ACCESS_KEY_ID":           "testing",
		"AWS_SECRET_ACCESS_KEY":       "testing",
		"AWS_SESSION_TOKEN":           "testing",
		"AWS_REGION":                  Region,
		"AWS_DEFAULT_REGION":          Region,
		"AWS_CONFIG_FILE":             "/dev/null",
		"AWS_SHARED_CREDENTIALS_FILE": "/dev/null",
		"AWS_EC2_METADATA_DISABLED":   "true",
	} {
		t.Setenv(k, v)
	}
	return url
}

// Server runs moto_server until the test ends and returns its endpoint
// URL, leaving the test's environment alone (for parallel tests).
func Server(t *testing.T, opts ...Option) string {
	t.Helper()
	bin, err := exec.LookPath("moto_server")
	if err != nil {
		t.Fatal("moto_server is not installed (pip install 'moto[server]'); .ci/run checks for it")
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	cmd := exec.Command(bin, "-H", "127.0.0.1", "-p", fmt.Sprint(port))
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true} // stop its workers too
	cmd.Env = os.Environ()
	for _, o := range opts {
		o(cmd)
	}
	if os.Getenv("MOTO_LOG") != "" { // every request it serves, in the test log
		cmd.Stdout, cmd.Stderr = testWriter{t}, testWriter{t}
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
		_ = cmd.Wait()
	})
	url := fmt.Sprintf("http://127.0.0.1:%d", port)
	deadline := time.Now().Add(60 * time.Second)
	for {
		resp, err := http.Get(url + "/moto-api/")
		if err == nil {
			resp.Body.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("moto_server did not answer on %s within 60s: %v", url, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	return url
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Logf("moto: %s", p)
	return len(p), nil
}
