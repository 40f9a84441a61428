// Package pgtest starts a throwaway PostgreSQL server for tests and the
// benchmark: initdb into a fresh temporary directory, pg_ctl start on
// 127.0.0.1 with a free port, and stop plus removal at the end.
//
// PostgreSQL refuses to run as root, so when the caller is root the server
// runs as the "postgres" system user (runuser), on a directory it owns.
package pgtest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
)

// Server is a running PostgreSQL instance.
type Server struct {
	Dir  string // data directory and unix socket directory
	Port int
	bin  string
	as   *user.User // nil when running as the current user
	seq  atomic.Int64
	pass string // the superuser's password when TCP connections need one
}

// Options change how Start sets the server up; the zero value is Start's.
type Options struct {
	// Port to listen on; zero picks a free one. A test that starts a client
	// before its database picks the port first (FreePort).
	Port int
	// HostAuth, when set (e.g. "scram-sha-256"), is the authentication
	// method for TCP connections, as the official postgres image sets it;
	// the unix socket stays trusted, as in that image. The superuser then
	// gets a password, which URL includes.
	HostAuth string
}

// Start runs initdb and pg_ctl start. The binaries are looked up in $PG_BIN,
// then $PATH, then /usr/local/bin and /usr/lib/postgresql/*/bin.
func Start() (*Server, error) { return StartWith(Options{}) }

// StartWith is Start with options.
func StartWith(o Options) (*Server, error) {
	bin, err := findBin()
	if err != nil {
		return nil, err
	}
	s := &Server{bin: bin, Port: o.Port}
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			return nil, errors.New("pgtest: running as root, and PostgreSQL refuses root; create a 'postgres' user (apt-get install postgresql does)")
		}
		s.as = u
	}
	s.Dir, err = os.MkdirTemp("", "pgtest-")
	if err != nil {
		return nil, err
	}
	if s.as != nil {
		uid, _ := strconv.Atoi(s.as.Uid)
		gid, _ := strconv.Atoi(s.as.Gid)
		if err := os.Chown(s.Dir, uid, gid); err != nil {
			return nil, err
		}
	}
	data := filepath.Join(s.Dir, "data")
	initdb := []string{"-D", data, "-U", "postgres", "-A", "trust", "-E", "UTF8", "--no-sync"}
	if o.HostAuth != "" {
		s.pass = "pgtest-superuser"
		pwfile := filepath.Join(s.Dir, "pwfile")
		if err := os.WriteFile(pwfile, []byte(s.pass+"\n"), 0o644); err != nil {
			s.cleanup()
			return nil, err
		}
		initdb = []string{"-D", data, "-U", "postgres", "--auth-local=trust", "--auth-host=" + o.HostAuth, "--pwfile=" + pwfile, "-E", "UTF8", "--no-sync"}
	}
	if out, err := s.run("initdb", initdb...); err != nil {
		s.cleanup()
		return nil, fmt.Errorf("pgtest: initdb: %v\n%s", err, out)
	}
	if s.Port == 0 {
		if s.Port, err = FreePort(); err != nil {
			s.cleanup()
			return nil, err
		}
	}
	opts := fmt.Sprintf("-c listen_addresses=127.0.0.1 -p %d -k %s -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200", s.Port, s.Dir)
	if out, err := s.run("pg_ctl", "-D", data, "-o", opts, "-l", filepath.Join(s.Dir, "log"), "-w", "-t", "60", "start"); err != nil {
		log, _ := os.ReadFile(filepath.Join(s.Dir, "log"))
		s.cleanup()
		return nil, fmt.Errorf("pgtest: pg_ctl start: %v\n%s\n%s", err, out, log)
	}
	return s, nil
}

// URL is the superuser's TCP connection string for database db.
func (s *Server) URL(db string) string {
	if s.pass != "" {
		return fmt.Sprintf("postgres://postgres:%s@127.0.0.1:%d/%s?sslmode=disable", s.pass, s.Port, db)
	}
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/%s?sslmode=disable", s.Port, db)
}

// UserURL is the TCP connection string of role user with password for db.
func (s *Server) UserURL(user, password, db string) string {
	return fmt.Sprintf("postgres://%s:%s@127.0.0.1:%d/%s?sslmode=disable", user, password, s.Port, db)
}

// NewDatabase creates an empty database with a unique name and returns its URL.
func (s *Server) NewDatabase(ctx context.Context) (string, error) {
	name := fmt.Sprintf("test_%d_%d", os.Getpid(), s.seq.Add(1))
	conn, err := pgx.Connect(ctx, s.URL("postgres"))
	if err != nil {
		return "", err
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		return "", err
	}
	return s.URL(name), nil
}

// Stop shuts the server down and removes its directory.
func (s *Server) Stop() error {
	_, err := s.run("pg_ctl", "-D", filepath.Join(s.Dir, "data"), "-m", "immediate", "-w", "stop")
	s.cleanup()
	return err
}

func (s *Server) cleanup() { _ = os.RemoveAll(s.Dir) }

func (s *Server) run(tool string, args ...string) ([]byte, error) {
	path := filepath.Join(s.bin, tool)
	var cmd *exec.Cmd
	if s.as != nil {
		cmd = exec.Command("runuser", append([]string{"-u", s.as.Username, "--", path}, args...)...)
	} else {
		cmd = exec.Command(path, args...)
	}
	cmd.Dir = s.Dir
	done := make(chan struct{})
	var out []byte
	var err error
	go func() { out, err = cmd.CombinedOutput(); close(done) }()
	select {
	case <-done:
		return out, err
	case <-time.After(2 * time.Minute):
		_ = cmd.Process.Kill()
		<-done
		return out, fmt.Errorf("%s timed out", tool)
	}
}

func findBin() (string, error) {
	candidates := []string{os.Getenv("PG_BIN")}
	if p, err := exec.LookPath("initdb"); err == nil {
		candidates = append(candidates, filepath.Dir(p))
	}
	candidates = append(candidates, "/usr/local/bin")
	debian, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	for i := len(debian) - 1; i >= 0; i-- { // newest major first
		candidates = append(candidates, debian[i])
	}
	for _, dir := range candidates {
		if dir == "" {
			continue
		}
		if _, err := os.Stat(filepath.Join(dir, "initdb")); err == nil {
			if _, err := os.Stat(filepath.Join(dir, "pg_ctl")); err == nil {
				return dir, nil
			}
		}
	}
	return "", errors.New("pgtest: PostgreSQL server binaries (initdb, pg_ctl) not found in $PG_BIN, $PATH, /usr/local/bin or /usr/lib/postgresql/*/bin; install them (apt-get install postgresql) or set PG_BIN")
}

// FreePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func FreePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
