//go:build unix

package main

import (
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
	"golang.org/x/term"
)

// reapArg is the hidden subcommand that runs the reaper.
const reapArg = "__reap"

// group is the command's process group and the reaper that leads it.
//
// The reaper is this binary re-executed (reapArg) as the leader of a new
// process group, with a pipe from stacklock as its stdin; the command joins
// that group. The reaper ignores SIGINT, SIGTERM and SIGHUP and waits for
// its stdin to end. stdin ends when stacklock closes the pipe after the
// command exits, or when the kernel closes it because stacklock died, by
// SIGKILL included; either way the reaper then SIGKILLs its whole group:
// the command and everything it started. So nothing of a run outlives its
// hold on the lock, on every Unix (no Linux-only parent-death signal, which
// would also reach only the direct child, not pulumi's plugins).
type group struct {
	reaper *exec.Cmd
	pipe   *os.File // write end; closing it kills the group
	pgid   int
	tty    int // the terminal handed to the group, or -1
}

// startGroup starts the reaper. With a terminal on stdin the group becomes
// the terminal's foreground group, so the command can prompt (pulumi up
// asks before it updates) and Ctrl-C reaches it directly.
func startGroup() (*group, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	r, w, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	defer r.Close()
	g := &group{pipe: w, tty: -1}
	g.reaper = exec.Command(self, reapArg)
	g.reaper.Stdin = r
	attr := &syscall.SysProcAttr{Setpgid: true}
	if fd := int(os.Stdin.Fd()); term.IsTerminal(fd) {
		attr.Foreground, attr.Ctty, g.tty = true, fd, fd
	}
	g.reaper.SysProcAttr = attr
	if err := g.reaper.Start(); err != nil {
		w.Close()
		return nil, fmt.Errorf("starting the reaper: %w", err)
	}
	g.pgid = g.reaper.Process.Pid
	return g, nil
}

// join puts cmd into the group when it starts.
func (g *group) join(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pgid: g.pgid}
}

// signal sends sig to every process in the group but the reaper, which
// ignores it.
func (g *group) signal(sig syscall.Signal) error { return syscall.Kill(-g.pgid, sig) }

// kill ends the group now (SIGKILL, by the reaper) and waits for the
// reaper; it takes the terminal back first.
func (g *group) kill() {
	g.restoreTerminal()
	g.pipe.Close()
	_ = g.reaper.Wait()
}

// restoreTerminal makes stacklock's own group the foreground group again;
// a background group changing it gets SIGTTOU, hence the ignore.
func (g *group) restoreTerminal() {
	if g.tty < 0 {
		return
	}
	signal.Ignore(syscall.SIGTTOU)
	defer signal.Reset(syscall.SIGTTOU)
	_ = unix.IoctlSetPointerInt(g.tty, unix.TIOCSPGRP, syscall.Getpgrp())
	g.tty = -1
}

// reap is the reaper's whole life: wait for stdin to end, then SIGKILL the
// process group it leads, itself included.
func reap() int {
	signal.Ignore(syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP, syscall.SIGTTOU, syscall.SIGTTIN)
	_, _ = io.Copy(io.Discard, os.Stdin)
	_ = syscall.Kill(0, syscall.SIGKILL)
	return 0
}

// machineID names this machine, boot and PID namespace, so that a lock
// holder's pid can be checked only where it means the same process: the
// hostname alone is not enough (containers share names, pids restart at
// boot). Empty when it cannot be told (not Linux).
func machineID() string {
	if runtime.GOOS != "linux" {
		return ""
	}
	boot, err := os.ReadFile("/proc/sys/kernel/random/boot_id")
	if err != nil {
		return ""
	}
	ns, err := os.Readlink("/proc/self/ns/pid")
	if err != nil {
		return ""
	}
	host, _ := os.Hostname()
	return host + "/" + strings.TrimSpace(string(boot)) + "/" + ns
}

// localLiveness says whether a holder that ran on this machine still has a
// live process: its stacklock (pid) or anything in its command's process
// group (pgid). Zombies count as gone: they run nothing. It returns a
// description of what it found.
func localLiveness(pid, pgid int) (alive bool, found string) {
	var live []string
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		p, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		// pid (comm) state ppid pgrp ...; comm may hold spaces and parens.
		s := string(stat)
		i := strings.LastIndexByte(s, ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(s[i+1:])
		if len(f) < 3 || f[0] == "Z" || f[0] == "X" {
			continue
		}
		pg, _ := strconv.Atoi(f[2])
		if p == pid || (pgid > 0 && pg == pgid) {
			live = append(live, fmt.Sprintf("%d %s", p, s[strings.IndexByte(s, '(')+1:i]))
		}
	}
	if len(live) == 0 {
		return false, fmt.Sprintf("its stacklock (pid %d) and its command's process group (%d) are gone from this machine", pid, pgid)
	}
	return true, fmt.Sprintf("still running on this machine: %s", strings.Join(live, ", "))
}
