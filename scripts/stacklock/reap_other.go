//go:build !unix

package main

import (
	"errors"
	"os/exec"
	"syscall"
)

const reapArg = "__reap"

// errNoReaper: without process groups stacklock cannot make sure that the
// command dies with it, and a command that outlives its lock can overlap
// the next deploy. So `run` refuses here rather than lock half-way.
var errNoReaper = errors.New("stacklock run needs a Unix system (Linux, macOS, BSD): it must be able to kill the command's process group if stacklock dies, so that no deploy outlives its lock; use WSL on Windows")

type group struct{ pgid int }

func startGroup() (*group, error)                { return nil, errNoReaper }
func (g *group) join(*exec.Cmd)                  {}
func (g *group) signal(syscall.Signal) error     { return errNoReaper }
func (g *group) kill()                           {}
func (g *group) restoreTerminal()                {}
func reap() int                                  { return 0 }
func machineID() string                          { return "" }
func localLiveness(pid, pgid int) (bool, string) { return true, "cannot look at processes here" }
