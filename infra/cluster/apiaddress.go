package cluster

import (
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"microk8s-platform/infra/network"
)

// ParseAPIAddress reads what the apiaddress step (scripts/microk8s/
// api-address.sh) prints: `advertise-address=<ip>` and
// `advertise-port=<port>` lines, nothing else. It wants exactly one
// address, a usable IPv4 unicast one (the cluster is one node; the
// NetworkPolicy it goes into is IPv4), and the port MicroK8s serves the API
// on (network.APIPort, 16443). Anything else is an error saying what was
// printed, so a surprise on the host fails the deploy instead of writing a
// rule that lets nothing (or too much) through.
func ParseAPIAddress(stdout string) (netip.Addr, error) {
	var addrs []netip.Addr
	var ports []string
	for _, line := range strings.Split(stdout, "\n") {
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		key, val, ok := strings.Cut(line, "=")
		switch {
		case ok && key == "advertise-address":
			a, err := netip.ParseAddr(val)
			if err != nil {
				return netip.Addr{}, fmt.Errorf("the API server's advertised address %q is not an IP address: %w", val, err)
			}
			if !a.Is4() {
				return netip.Addr{}, fmt.Errorf("the API server advertises %s, want an IPv4 address (Kong's NetworkPolicy allows it as <address>/32)", a)
			}
			if !a.IsGlobalUnicast() {
				return netip.Addr{}, fmt.Errorf("the API server advertises %s, which is not a unicast address of a host", a)
			}
			if !slices.Contains(addrs, a) {
				addrs = append(addrs, a)
			}
		case ok && key == "advertise-port":
			ports = append(ports, val)
		default:
			return netip.Addr{}, fmt.Errorf("unexpected line %q from the API address step, want advertise-address=<ip> or advertise-port=<port>", line)
		}
	}
	switch len(addrs) {
	case 0:
		return netip.Addr{}, fmt.Errorf("the API address step printed no advertise-address line (output %q)", stdout)
	case 1:
	default:
		return netip.Addr{}, fmt.Errorf("the API server advertises %v, want one address: this is a single-node MicroK8s", addrs)
	}
	want := strconv.Itoa(network.APIPort)
	if len(ports) == 0 {
		return netip.Addr{}, fmt.Errorf("the API address step printed no advertise-port line (output %q)", stdout)
	}
	for _, p := range ports {
		if p != want {
			return netip.Addr{}, fmt.Errorf("the API server's endpoint port is %q, want %s (MicroK8s's --secure-port, which the firewall and Kong's NetworkPolicy allow)", p, want)
		}
	}
	return addrs[0], nil
}
