// Package repo knows two facts about the repository: the Pulumi project's
// name, for the tools that work on its stacks from outside the program
// (stacklock keys, the access helper, the local driver, the mocks), and
// where its root is — the folder with Pulumi.yaml.
package repo

import (
	"errors"
	"os"
	"path/filepath"
)

// Project is the name in Pulumi.yaml (a test keeps them equal).
const Project = "microk8s-platform"

// Root walks up from the working directory to the folder with Pulumi.yaml.
func Root() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "Pulumi.yaml")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no Pulumi.yaml above the working directory: run from inside the repository")
		}
		dir = parent
	}
}
