package main

import (
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"time"

	"github.com/google/go-containerregistry/pkg/registry"
)

// registryRepository is the repository the sandbox's image goes to.
const registryRepository = "microk8s-platform/comments"

// serveRegistry serves an OCI registry (go-containerregistry's
// pkg/registry, in memory) on addr, a 127.0.0.1 address, for the life of
// the process, and returns the repository to push the service's image to.
// The sandbox runs no containers, so nothing pulls from it; the program
// pushes the image it built there, the Deployment names it by digest, and
// the e2e test checks the registry holds exactly that digest. The address
// is fixed (not a random port) so that the Deployment's image reference,
// and hence a no-op preview, stays the same from one run to the next.
func serveRegistry(addr string) (string, error) {
	host, _, err := net.SplitHostPort(addr)
	if err != nil || net.ParseIP(host) == nil || !net.ParseIP(host).IsLoopback() {
		return "", fmt.Errorf("registry address %q: want a loopback address with a port, such as 127.0.0.1:18500", addr)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return "", fmt.Errorf("registry on %s: %w", addr, err)
	}
	srv := &http.Server{Handler: registry.New(registry.Logger(log.New(io.Discard, "", 0))), ReadHeaderTimeout: 10 * time.Second}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Printf("local registry: %v", err)
		}
	}()
	return addr + "/" + registryRepository, nil
}
