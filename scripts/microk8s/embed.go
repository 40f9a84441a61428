// Package microk8s embeds the shell scripts that install and configure
// MicroK8s on a host. infra/cluster runs them over SSH; their tests run them
// against stand-in snap, microk8s and cloud-init commands.
package microk8s

import (
	"crypto/sha256"
	"embed"
	"encoding/hex"
)

//go:embed *.sh
var files embed.FS

// Script returns the named script's text; it panics on an unknown name,
// which is a programming error caught by the tests.
func Script(name string) string {
	b, err := files.ReadFile(name)
	if err != nil {
		panic("microk8s: no script " + name)
	}
	return string(b)
}

// Hash is the script's SHA-256, used as a trigger: editing a script re-runs
// exactly the step that runs it.
func Hash(name string) string {
	sum := sha256.Sum256([]byte(Script(name)))
	return hex.EncodeToString(sum[:])
}
