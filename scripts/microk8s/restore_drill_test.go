package microk8s

import (
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The restore drill, as far as it runs on this machine: a real PostgreSQL
// on a data disk the real mount script formatted (a loop device), a
// crash-consistent point-in-time copy of the disk taken while PostgreSQL
// runs (the filesystem frozen for the copy, as a block-level snapshot sees
// it: EBS and persistent-disk snapshots are point-in-time copies of the
// volume), the old machine killed without a shutdown, and a new disk made
// from the copy mounted by the script on a "new machine". The script must
// keep the ext4 it finds, and PostgreSQL must recover by replaying its WAL
// and hold exactly what was committed before the snapshot: a
// crash-consistent snapshot of the one volume that holds the data
// directory and its WAL is a valid backup (PostgreSQL documentation, "File
// System Level Backup"). What cannot run here: the cloud's own snapshot
// and its API (the provider tier runs the restore's calls against moto).
func TestRestoreDrillWithPostgreSQL(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root for loop devices, mount and running PostgreSQL as postgres (CI runs as root)")
	}
	bin := pgBin(t)
	pgUser, err := user.Lookup("postgres")
	if err != nil {
		t.Fatal("no postgres user (make deps makes it)")
	}
	dirs := "DIRS=postgres:" + pgUser.Uid + ":" + pgUser.Gid

	// The first machine: a blank data disk, formatted and mounted.
	first := newDiskFrom(t, "", 256<<20)
	if out, err := first.run(dirs); err != nil || !strings.Contains(out, "is blank: formatting it ext4") {
		t.Fatalf("first mount: %v\n%s", err, out)
	}
	sock := t.TempDir()
	must(t, os.Chown(sock, atoi(t, pgUser.Uid), atoi(t, pgUser.Gid)))
	// The postgres user reaches its directories through the test's own.
	for _, d := range []string{first.root, filepath.Dir(first.root), filepath.Dir(sock)} {
		must(t, os.Chmod(d, 0o755))
	}
	uid, gid := atoi(t, pgUser.Uid), atoi(t, pgUser.Gid)
	pg := &postgres{t: t, bin: bin, data: filepath.Join(first.mnt(), "postgres", "data"), sock: sock, uid: uid, gid: gid}
	pg.run("initdb", "-D", pg.data, "-U", "postgres", "--auth=trust")
	pg.start()
	pg.sql("CREATE TABLE comments (id int PRIMARY KEY, body text); INSERT INTO comments SELECT g, 'before ' || g FROM generate_series(1, 500) g;")

	// The snapshot, while PostgreSQL runs: no checkpoint, no shutdown.
	snap := filepath.Join(t.TempDir(), "snapshot.img")
	for _, args := range [][]string{{"fsfreeze", "-f", first.mnt()}, {"cp", "--sparse=always", first.img(), snap}, {"fsfreeze", "-u", first.mnt()}} {
		if out, err := exec.Command(args[0], args[1:]...).CombinedOutput(); err != nil {
			_ = exec.Command("fsfreeze", "-u", first.mnt()).Run()
			t.Fatalf("%v: %v\n%s", args, err, out)
		}
	}
	// Written after the snapshot: lost by the restore, as documented.
	pg.sql("INSERT INTO comments SELECT g, 'after ' || g FROM generate_series(501, 600) g;")
	pg.kill() // the old VM is gone: no clean shutdown
	first.umount()

	// The new machine: a new disk from the snapshot; the script keeps it.
	second := newDiskFrom(t, snap, 0)
	for _, d := range []string{second.root, filepath.Dir(second.root)} {
		must(t, os.Chmod(d, 0o755))
	}
	out, err := second.run(dirs)
	if err != nil || !strings.Contains(out, "holds ext4: keeping it and its data") || strings.Contains(out, "formatting") {
		t.Fatalf("the restored disk was not kept as it is: %v\n%s", err, out)
	}
	pg2 := &postgres{t: t, bin: bin, data: filepath.Join(second.mnt(), "postgres", "data"), sock: sock, uid: uid, gid: gid}
	pg2.start()
	if got := pg2.sql("SELECT count(*), max(id), count(*) FILTER (WHERE body LIKE 'after%') FROM comments;"); got != "500|500|0" {
		t.Errorf("after the restore: count, max id, rows written after the snapshot = %q, want 500|500|0", got)
	}
	log, _ := os.ReadFile(pg2.log())
	if !strings.Contains(string(log), "database system was not properly shut down; automatic recovery in progress") || !strings.Contains(string(log), "redo done") {
		t.Errorf("PostgreSQL did not recover from the crash-consistent copy by replaying WAL:\n%s", log)
	}
	for _, line := range strings.Split(string(log), "\n") {
		if strings.Contains(line, "recovery") || strings.Contains(line, "redo") {
			t.Log(line)
		}
	}
	pg2.kill()
}

func pgBin(t *testing.T) string {
	t.Helper()
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	for _, dir := range append([]string{"/usr/local/bin"}, dirs...) {
		// /usr/local/bin may hold links to some of them only: the
		// directory pg_ctl really is in has them all.
		if real, err := filepath.EvalSymlinks(filepath.Join(dir, "pg_ctl")); err == nil {
			return filepath.Dir(real)
		}
	}
	t.Fatal("PostgreSQL's server binaries are not installed (make deps)")
	return ""
}

func atoi(t *testing.T, s string) int {
	t.Helper()
	n, err := strconv.Atoi(s)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func (d *disk) img() string { return filepath.Join(d.root, "disk.img") }

// postgres is a server run as the postgres user on 127.0.0.1.
type postgres struct {
	t          *testing.T
	bin        string
	data, sock string
	uid, gid   int
	port       string
	cmd        *exec.Cmd
}

func (p *postgres) log() string { return filepath.Join(p.sock, "server.log") }

func (p *postgres) run(name string, args ...string) string {
	p.t.Helper()
	cmd := exec.Command("runuser", append([]string{"-u", "postgres", "--", filepath.Join(p.bin, name)}, args...)...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		log, _ := os.ReadFile(p.log())
		p.t.Fatalf("%s %v: %v\n%s\nserver log:\n%s", name, args, err, out, log)
	}
	return string(out)
}

func (p *postgres) start() {
	p.t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		p.t.Fatal(err)
	}
	p.port = strconv.Itoa(l.Addr().(*net.TCPAddr).Port)
	l.Close()
	logf, err := os.Create(p.log())
	if err != nil {
		p.t.Fatal(err)
	}
	defer logf.Close()
	// The postmaster is this test's own child (not pg_ctl's daemon), so
	// that once killed it is reaped: the copy's postmaster.pid names it,
	// and a PID still there (a zombie) would read as a running server.
	cmd := exec.Command(filepath.Join(p.bin, "postgres"), "-D", p.data, "-p", p.port,
		"-c", "listen_addresses=127.0.0.1", "-c", "unix_socket_directories="+p.sock)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(p.uid), Gid: uint32(p.gid)}}
	if err := cmd.Start(); err != nil {
		p.t.Fatal(err)
	}
	p.cmd = cmd
	p.t.Cleanup(p.kill)
	for range 600 {
		if exec.Command(filepath.Join(p.bin, "pg_isready"), "-q", "-h", "127.0.0.1", "-p", p.port).Run() == nil {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	log, _ := os.ReadFile(p.log())
	p.t.Fatalf("PostgreSQL did not come up on 127.0.0.1:%s:\n%s", p.port, log)
}

// kill stops the server the way a lost machine does: an immediate
// shutdown (SIGQUIT) writes no checkpoint, so the next start recovers.
func (p *postgres) kill() {
	if p.cmd == nil {
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGQUIT)
	_ = p.cmd.Wait()
	p.cmd = nil
}

func (p *postgres) sql(q string) string {
	p.t.Helper()
	out, err := exec.Command("psql", "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-h", "127.0.0.1", "-p", p.port, "-U", "postgres", "-d", "postgres", "-c", q).CombinedOutput()
	if err != nil {
		p.t.Fatalf("psql %q: %v\n%s", q, err, out)
	}
	return strings.TrimSpace(string(out))
}
