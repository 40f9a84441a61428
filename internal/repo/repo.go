// Package repo finds the repository's root — the folder with Pulumi.yaml —
// for the programs and tests that read the stack files, the README or the
// workflows from wherever they run.
package repo

import (
	"errors"
	"os"
	"path/filepath"
)

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
