// Package infra is the platform's Pulumi program as a library: typed stack
// configuration (this file) and the composition root, Platform, which wires
// the building blocks in the sub-packages together. stacks/platform/main.go
// only calls Platform; the tests call the same function under mocks.
package infra

import (
	"errors"
	"fmt"
	"net"
	"net/mail"
	"net/url"
	"path"
	"regexp"
	"slices"
	"strings"

	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi/config"

	"microk8s-platform/infra/vm"
)

// Targets: where the platform runs.
const (
	TargetAWS        = "aws"        // VPC + EC2 + MicroK8s over SSH
	TargetGCP        = "gcp"        // VPC network + GCE + MicroK8s over SSH
	TargetSSH        = "ssh"        // an existing Ubuntu host + MicroK8s over SSH
	TargetKubeconfig = "kubeconfig" // an existing cluster
)

var targets = []string{TargetAWS, TargetGCP, TargetSSH, TargetKubeconfig}

// Config is every key of a stack file, typed, with defaults applied. Keys
// live in the project namespace ("microk8s-platform:<key>") except the
// clouds' own region/project keys ("aws:region", "gcp:project", ...).
type Config struct {
	Project, Stack string

	Target string // target: aws | gcp | ssh | kubeconfig (required)

	// Network (aws, gcp)
	VpcCidr    string   // vpcCidr, default 10.0.0.0/16
	SubnetCidr string   // subnetCidr: a /24 inside vpcCidr, default 10.0.1.0/24
	AdminCidrs []string // adminCidrs: who may reach SSH (22) and the Kubernetes API (16443), IPv4 or IPv6; required for aws and gcp

	// VM
	AwsRegion     string // aws:region (aws)
	InstanceType  string // instanceType (aws), default t3.large
	Spot          bool   // spot (aws): a one-time spot request, terminated when reclaimed (vm.SpotOptions); default false
	GcpProject    string // gcp:project (gcp, required)
	GcpRegion     string // gcp:region (gcp), default us-central1
	GcpZone       string // gcp:zone (gcp), default the region's first zone (infra/vm GCPZones); required for a region outside that table
	MachineType   string // machineType (gcp), default e2-standard-2
	Preemptible   bool   // spot (gcp): a Spot VM; default false
	RootVolumeGiB int    // rootVolumeGiB, default 30, at least 20: the OS, images and MicroK8s
	// The data disk (aws, gcp; infra/vm datadisk.go): PostgreSQL's and
	// Prometheus's volumes, kept when the VM is replaced.
	DataVolumeGiB         int    // dataVolumeGiB, default 20: at least dbStorageGiB plus prometheusStorageGiB plus 1
	DataSnapshotID        string // dataSnapshotId: restore the data disk from this snapshot (AWS snap-..., GCP snapshot name); default none
	SnapshotRetentionDays int    // snapshotRetentionDays (aws, gcp): how long each daily snapshot of the data disk is kept, default 7
	UbuntuRelease         string // ubuntuRelease: 22.04 or 24.04, default 24.04

	// SSH (aws, gcp, ssh)
	SSHUser       string              // sshUser, default ubuntu
	SSHPort       int                 // sshPort, default 22
	SSHPublicKey  string              // sshPublicKey: the OpenSSH public key installed on the VM (aws, gcp)
	SSHPrivateKey pulumi.StringOutput // sshPrivateKey (secret): its private half, for the remote commands
	SSHHost       string              // sshHost (ssh): the host's reachable address
	SSHPrivateIP  string              // sshPrivateIp (ssh): the host's own IPv4 address for MetalLB; default: the address of the host's default route, found on the host
	DataDir       string              // dataDir (ssh): the host directory PostgreSQL's and Prometheus's data live in, default /var/lib/platform-data
	hasPrivateKey bool

	// MicroK8s
	MicroK8sChannel string // microk8sChannel: a classic <major>.<minor>/<risk> snap channel, default 1.35/stable (see DefaultChannel)

	// Existing cluster (kubeconfig)
	Kubeconfig  string // kubeconfig: path to a kubeconfig file; default ~/.kube/config (the provider's default)
	KubeContext string // kubeContext: context in it; default its current context

	// Kubernetes layer
	GatewayServiceType string              // gatewayServiceType: LoadBalancer (MetalLB on MicroK8s) or NodePort; default LoadBalancer
	AppImage           string              // appImage: a published image to run instead of building service/ (appimage.go); default none
	AppTag             string              // appTag: its tag, required with appImage, never "latest"
	ImageRepository    string              // imageRepository: push the built image there and pull it from there (target kubeconfig)
	ImagePullSecret    pulumi.StringOutput // imagePullSecret (secret): .dockerconfigjson for a private registry
	HostArch           string              // hostArch: amd64 or arm64, the host's (ssh) or nodes' (kubeconfig) architecture; default amd64
	hasPullSecret      bool
	AppReplicas        int                 // appReplicas, default 1
	RateLimitPerMinute int                 // rateLimitPerMinute: Kong's limit per client IP, default 120
	DBStorageGiB       int                 // dbStorageGiB, default 5
	DBPassword         pulumi.StringOutput // dbPassword (secret, required)
	DBAdminPassword    pulumi.StringOutput // dbAdminPassword (secret, optional): the PostgreSQL superuser's; unset, it is random and unknown
	DBReclaimPolicy    string              // dbReclaimPolicy: Delete (destroy deletes the data) or Retain (the volume outlives destroy); default Delete
	Observability      bool                // observability: ServiceMonitors, alert rules and dashboards; default true except for kubeconfig

	// Alerts (observability on a MicroK8s of ours): where the addon's
	// Alertmanager sends them. At least one receiver is required.
	AlertEmails          []string            // alertEmails: recipients; needs alertSmtpHost and alertSmtpFrom
	AlertSMTPHost        string              // alertSmtpHost: the mail relay, host:port (e.g. email-smtp.us-east-1.amazonaws.com:587)
	AlertSMTPFrom        string              // alertSmtpFrom: the sender address
	AlertSMTPUsername    string              // alertSmtpUsername: optional
	AlertSMTPPassword    pulumi.StringOutput // alertSmtpPassword (secret): optional
	AlertWebhookURL      pulumi.StringOutput // alertWebhookUrl (secret): an Alertmanager webhook receiver (http or https)
	PrometheusStorageGiB int                 // prometheusStorageGiB: Prometheus' volume on the host's disk, default 10
	hasSMTPPassword      bool
	alertWebhook         string // its value, for Validate only
	hasDBAdminPassword   bool
	hasDBPassword        bool

	// Budget (aws)
	BudgetMonthlyUSD float64  // budgetMonthlyUsd, default 15
	BudgetEmails     []string // budgetEmails: who gets the 25/50/75 % and forecast alerts
}

// Defaults are the values of unset keys.
func Defaults() Config {
	return Config{
		VpcCidr:               "10.0.0.0/16",
		SubnetCidr:            "10.0.1.0/24",
		InstanceType:          "t3.large",
		GcpRegion:             "us-central1",
		MachineType:           "e2-standard-2",
		RootVolumeGiB:         30,
		DataVolumeGiB:         20,
		SnapshotRetentionDays: 7,
		UbuntuRelease:         "24.04",
		SSHUser:               "ubuntu",
		SSHPort:               22,
		MicroK8sChannel:       DefaultChannel,
		GatewayServiceType:    "LoadBalancer",
		HostArch:              "amd64",
		AppReplicas:           1,
		RateLimitPerMinute:    120,
		DBStorageGiB:          5,
		DBReclaimPolicy:       "Delete",
		PrometheusStorageGiB:  10,
		BudgetMonthlyUSD:      15,
	}
}

// Load reads the stack's configuration. It does not validate: call Validate.
func Load(ctx *pulumi.Context) (Config, error) {
	c := Defaults()
	c.Project, c.Stack = ctx.Project(), ctx.Stack()
	p := config.New(ctx, "")
	var errs []error
	str := func(key string, dst *string) {
		if v, ok := p.Try(key); ok == nil {
			*dst = strings.TrimSpace(v)
		}
	}
	add := func(err error) {
		if err != nil {
			errs = append(errs, err)
		}
	}
	num := func(key string, dst *int) { add(parse(p, key, dst, p.TryInt, "a whole number")) }
	boolean := func(key string, dst *bool) { add(parse(p, key, dst, p.TryBool, "true or false")) }
	list := func(key string, dst *[]string) {
		if _, err := p.Try(key); err != nil {
			return
		}
		if err := p.TryObject(key, dst); err != nil {
			errs = append(errs, fmt.Errorf("%s: %q is not a list of strings (YAML list or JSON array)", key, p.Get(key)))
		}
	}

	str("target", &c.Target)
	str("vpcCidr", &c.VpcCidr)
	str("subnetCidr", &c.SubnetCidr)
	list("adminCidrs", &c.AdminCidrs)
	str("instanceType", &c.InstanceType)
	str("machineType", &c.MachineType)
	num("rootVolumeGiB", &c.RootVolumeGiB)
	num("dataVolumeGiB", &c.DataVolumeGiB)
	str("dataSnapshotId", &c.DataSnapshotID)
	num("snapshotRetentionDays", &c.SnapshotRetentionDays)
	str("ubuntuRelease", &c.UbuntuRelease)
	str("sshUser", &c.SSHUser)
	num("sshPort", &c.SSHPort)
	str("sshPublicKey", &c.SSHPublicKey)
	str("sshHost", &c.SSHHost)
	str("sshPrivateIp", &c.SSHPrivateIP)
	str("dataDir", &c.DataDir)
	str("microk8sChannel", &c.MicroK8sChannel)
	str("kubeconfig", &c.Kubeconfig)
	str("kubeContext", &c.KubeContext)
	str("gatewayServiceType", &c.GatewayServiceType)
	loadImageKeys(p, &c)
	num("appReplicas", &c.AppReplicas)
	num("rateLimitPerMinute", &c.RateLimitPerMinute)
	num("dbStorageGiB", &c.DBStorageGiB)
	str("dbReclaimPolicy", &c.DBReclaimPolicy)
	list("budgetEmails", &c.BudgetEmails)
	list("alertEmails", &c.AlertEmails)
	str("alertSmtpHost", &c.AlertSMTPHost)
	str("alertSmtpFrom", &c.AlertSMTPFrom)
	str("alertSmtpUsername", &c.AlertSMTPUsername)
	num("prometheusStorageGiB", &c.PrometheusStorageGiB)
	if v, err := p.TrySecret("alertSmtpPassword"); err == nil {
		c.AlertSMTPPassword, c.hasSMTPPassword = v, true
	}
	if v, err := p.TrySecret("alertWebhookUrl"); err == nil {
		c.AlertWebhookURL = v
		c.alertWebhook = strings.TrimSpace(p.Get("alertWebhookUrl"))
	}
	add(parse(p, "budgetMonthlyUsd", &c.BudgetMonthlyUSD, p.TryFloat64, "a number"))

	var spot bool
	boolean("spot", &spot)
	c.Spot, c.Preemptible = spot, spot
	c.Observability = c.Target != TargetKubeconfig
	boolean("observability", &c.Observability)

	if v, err := p.TrySecret("sshPrivateKey"); err == nil {
		c.SSHPrivateKey, c.hasPrivateKey = v, true
	}
	if v, err := p.TrySecret("dbPassword"); err == nil {
		c.DBPassword, c.hasDBPassword = v, true
	}
	if v, err := p.TrySecret("dbAdminPassword"); err == nil {
		c.DBAdminPassword, c.hasDBAdminPassword = v, true
	}

	awsCfg := config.New(ctx, "aws")
	c.AwsRegion = awsCfg.Get("region")
	gcpCfg := config.New(ctx, "gcp")
	c.GcpProject = gcpCfg.Get("project")
	if v := gcpCfg.Get("region"); v != "" {
		c.GcpRegion = v
	}
	if c.Target == TargetSSH && c.DataDir == "" {
		c.DataDir = vm.DataMount
	}
	c.GcpZone = gcpCfg.Get("zone")
	if c.GcpZone == "" {
		// A real zone of the region, never a guessed "<region>-a"; a
		// region outside the table needs gcp:zone (Validate says so).
		c.GcpZone, _ = vm.DefaultGCPZone(c.GcpRegion)
	}
	return c, errors.Join(errs...)
}

// parse sets *dst from key when the key is set; a value that does not
// parse as T is an error naming the key, the value and what was expected.
func parse[T any](p *config.Config, key string, dst *T, try func(string) (T, error), what string) error {
	if _, err := p.Try(key); err != nil {
		return nil // unset: keep the default
	}
	v, err := try(key)
	if err != nil {
		return fmt.Errorf("%s: %q is not %s", key, p.Get(key), what)
	}
	*dst = v
	return nil
}

var (
	channelRe   = regexp.MustCompile(`^([0-9]+)\.([0-9]+)(-strict)?/(stable|candidate|beta|edge)$`)
	dataDirRe   = regexp.MustCompile(`^/[A-Za-z0-9._/-]+$`)
	sshKeyRe    = regexp.MustCompile(`^(ssh-ed25519|ssh-rsa|ecdsa-sha2-nistp(256|384|521)) [A-Za-z0-9+/=]+( .*)?$`)
	imageRe     = regexp.MustCompile(`^[a-z0-9]+([._-][a-z0-9]+)*(:[0-9]+)?(/[a-z0-9]+([._-][a-z0-9]+)*)+$`)
	tagRe       = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$`)
	hostRe      = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?)*$`)
	gcpMachRe   = regexp.MustCompile(`^[a-z][a-z0-9]*-[a-z0-9-]+$`)
	ubuntuLTS   = []string{"22.04", "24.04"}
	awsTypeRe   = regexp.MustCompile(`^[a-z][a-z0-9-]*\.[a-z0-9]+$`)
	gcpRegionRe = regexp.MustCompile(`^[a-z]+-[a-z]+[0-9]+$`)
	// awsSnapshotRe: EBS snapshot ids, snap- and 8 (older) or 17 hex digits.
	awsSnapshotRe = regexp.MustCompile(`^snap-([0-9a-f]{8}|[0-9a-f]{17})$`)
	// gcpNameRe: Compute Engine resource names (RFC 1035 labels, 1-63).
	gcpNameRe = regexp.MustCompile(`^[a-z]([-a-z0-9]{0,61}[a-z0-9])?$`)
	// xenFamilies are the EC2 families not built on the Nitro System (AWS
	// EC2 User Guide, "Instances built on the AWS Nitro System": the rest
	// of the previous generation runs on Xen, where EBS is not NVMe).
	xenFamilies = []string{"t1", "t2", "m1", "m2", "m3", "m4", "c1", "c3", "c4", "r3", "r4", "i2", "i3", "x1", "x1e", "d2", "h1", "g2", "g3", "g3s", "p2", "p3", "f1"}
)

// RetainsData says whether destroy keeps the stack's data: the database
// volume's reclaimPolicy Retain (prod) keeps the data disk too, protected.
func (c Config) RetainsData() bool { return c.DBReclaimPolicy == "Retain" }

// Validate reports every problem at once. Each names the key, the bad value
// and what would be accepted.
func (c Config) Validate() error {
	var errs []error
	bad := func(key string, value any, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", key, describe(value, fmt.Sprintf(format, args...))))
	}
	cloud := c.Target == TargetAWS || c.Target == TargetGCP
	overSSH := cloud || c.Target == TargetSSH

	if !slices.Contains(targets, c.Target) {
		bad("target", c.Target, "want one of %s", strings.Join(targets, ", "))
	}
	if c.Target != TargetSSH && c.DataDir != "" {
		bad("dataDir", c.DataDir, "only for target ssh: a VM of ours mounts its data disk at %s, and target kubeconfig uses the cluster's own default StorageClass", vm.DataMount)
	}

	if cloud {
		_, vpc, err := net.ParseCIDR(c.VpcCidr)
		if err != nil || vpc.IP.To4() == nil || c.VpcCidr != vpc.String() {
			bad("vpcCidr", c.VpcCidr, "want an IPv4 network in CIDR form, such as 10.0.0.0/16")
			vpc = nil
		} else if ones, _ := vpc.Mask.Size(); ones < 16 || ones > 24 {
			bad("vpcCidr", c.VpcCidr, "want a prefix between /16 and /24")
		}
		_, sub, err := net.ParseCIDR(c.SubnetCidr)
		switch {
		case err != nil || sub.IP.To4() == nil || c.SubnetCidr != sub.String():
			bad("subnetCidr", c.SubnetCidr, "want an IPv4 /24 network in CIDR form, such as 10.0.1.0/24")
		case prefix(sub) != 24:
			bad("subnetCidr", c.SubnetCidr, "want a /24 (one small subnet, 251 usable addresses on AWS)")
		case vpc != nil && !vpc.Contains(sub.IP):
			bad("subnetCidr", c.SubnetCidr, "is not inside vpcCidr %s", c.VpcCidr)
		}
		if len(c.AdminCidrs) == 0 {
			bad("adminCidrs", nil, "required for target %s: the networks allowed to reach SSH and the Kubernetes API, e.g. [\"203.0.113.7/32\"]", c.Target)
		}
		for i, cidr := range c.AdminCidrs {
			key := fmt.Sprintf("adminCidrs[%d]", i)
			_, n, err := net.ParseCIDR(cidr)
			switch {
			case err != nil:
				bad(key, cidr, "want a CIDR such as 203.0.113.7/32")
			case prefix(n) == 0:
				bad(key, cidr, "opens SSH and the Kubernetes API to the whole internet; want your own network, e.g. 203.0.113.7/32")
			case cidr != n.String():
				bad(key, cidr, "has host bits set; want %s", n.String())
			}
		}
		if !sshKeyRe.MatchString(c.SSHPublicKey) {
			bad("sshPublicKey", short(c.SSHPublicKey), "want an OpenSSH public key line (ssh-ed25519 AAAA... comment)")
		}
		if c.RootVolumeGiB < 20 || c.RootVolumeGiB > 1024 {
			bad("rootVolumeGiB", c.RootVolumeGiB, "want 20 to 1024 (MicroK8s with observability needs 20 GiB)")
		}
		if !slices.Contains(ubuntuLTS, c.UbuntuRelease) {
			bad("ubuntuRelease", c.UbuntuRelease, "want one of %s", strings.Join(ubuntuLTS, ", "))
		}
		need := c.DBStorageGiB + 1
		if c.Observability {
			need += c.PrometheusStorageGiB
		}
		if c.DataVolumeGiB < need || c.DataVolumeGiB > 16384 {
			bad("dataVolumeGiB", c.DataVolumeGiB, "want %d to 16384: the data disk holds dbStorageGiB (%d)%s and 1 GiB of headroom", need, c.DBStorageGiB,
				map[bool]string{true: fmt.Sprintf(" and prometheusStorageGiB (%d)", c.PrometheusStorageGiB)}[c.Observability])
		}
		if c.SnapshotRetentionDays < 1 || c.SnapshotRetentionDays > 365 {
			bad("snapshotRetentionDays", c.SnapshotRetentionDays, "want 1 to 365 (days each daily snapshot of the data disk is kept)")
		}
	} else if c.DataSnapshotID != "" {
		bad("dataSnapshotId", c.DataSnapshotID, "restores the data disk of target aws or gcp; target %s has none", c.Target)
	}
	switch c.Target {
	case TargetAWS:
		if c.AwsRegion == "" {
			bad("aws:region", nil, "required for target aws, e.g. us-east-1")
		}
		if !awsTypeRe.MatchString(c.InstanceType) {
			bad("instanceType", c.InstanceType, "want an EC2 instance type such as t3.large")
		} else if fam, _, _ := strings.Cut(c.InstanceType, "."); slices.Contains(xenFamilies, fam) {
			bad("instanceType", c.InstanceType, "is a Xen type; want one built on the Nitro System (t3, m5, m6i, ...): the data disk is found by its NVMe id")
		}
		if c.DataSnapshotID != "" && !awsSnapshotRe.MatchString(c.DataSnapshotID) {
			bad("dataSnapshotId", c.DataSnapshotID, "want an EBS snapshot id, snap- and 8 or 17 hex digits")
		}
		if c.BudgetMonthlyUSD <= 0 {
			bad("budgetMonthlyUsd", c.BudgetMonthlyUSD, "want a positive amount in USD")
		}
		for i, e := range c.BudgetEmails {
			if a, err := mail.ParseAddress(e); err != nil || a.Address != e {
				bad(fmt.Sprintf("budgetEmails[%d]", i), e, "want an e-mail address such as ops@example.com")
			}
		}
	case TargetGCP:
		if c.DataSnapshotID != "" && !gcpNameRe.MatchString(c.DataSnapshotID) {
			bad("dataSnapshotId", c.DataSnapshotID, "want a Compute Engine snapshot name (lower case letters, digits and -, starting with a letter)")
		}
		if c.GcpProject == "" {
			bad("gcp:project", nil, "required for target gcp: the project id")
		}
		if !gcpRegionRe.MatchString(c.GcpRegion) {
			bad("gcp:region", c.GcpRegion, "want a region such as us-central1")
		} else if zones, known := vm.GCPZones(c.GcpRegion); c.GcpZone == "" {
			bad("gcp:zone", nil, "required for region %s, which is not in the zone table of infra/vm/gcp.go: set it to one of the region's zones (gcloud compute zones list --filter=region:%s)", c.GcpRegion, c.GcpRegion)
		} else if known && !slices.Contains(zones, c.GcpZone) {
			bad("gcp:zone", c.GcpZone, "want a zone of region %s: one of %s", c.GcpRegion, strings.Join(zones, ", "))
		} else if !strings.HasPrefix(c.GcpZone, c.GcpRegion+"-") {
			bad("gcp:zone", c.GcpZone, "want a zone of region %s (<region>-<letter>)", c.GcpRegion)
		}
		if !gcpMachRe.MatchString(c.MachineType) {
			bad("machineType", c.MachineType, "want a GCE machine type such as e2-standard-2")
		}
	case TargetSSH:
		if !validHost(c.SSHHost) {
			bad("sshHost", c.SSHHost, "required for target ssh: the host's IP address or DNS name")
		}
		if ip := net.ParseIP(c.SSHPrivateIP); c.SSHPrivateIP != "" && (ip == nil || ip.To4() == nil) {
			bad("sshPrivateIp", c.SSHPrivateIP, "want the host's own IPv4 address (MetalLB hands it to Kong), or leave it unset to use the address of the host's default route")
		}
		if !dataDirRe.MatchString(c.DataDir) || path.Clean(c.DataDir) != c.DataDir || strings.Count(c.DataDir, "/") < 2 {
			bad("dataDir", c.DataDir, "want an absolute, clean path at least two levels deep (letters, digits, . _ - /), such as /var/lib/platform-data: PostgreSQL's and Prometheus's data go in it")
		}
	case TargetKubeconfig:
		if c.Kubeconfig != "" && strings.ContainsAny(c.Kubeconfig, "\n") {
			bad("kubeconfig", short(c.Kubeconfig), "want a file path")
		}
	}
	if overSSH {
		if !c.hasPrivateKey {
			bad("sshPrivateKey", nil, "required for target %s; set it with: pulumi config set --secret sshPrivateKey < ~/.ssh/id_ed25519", c.Target)
		}
		if !regexp.MustCompile(`^[a-z_][a-z0-9_-]{0,31}$`).MatchString(c.SSHUser) {
			bad("sshUser", c.SSHUser, "want a Linux user name such as ubuntu")
		}
		if c.SSHPort < 1 || c.SSHPort > 65535 {
			bad("sshPort", c.SSHPort, "want 1-65535")
		}
		if err := checkChannel(c.MicroK8sChannel); err != nil {
			bad("microk8sChannel", c.MicroK8sChannel, "%v", err)
		}
	}

	if c.GatewayServiceType != "LoadBalancer" && c.GatewayServiceType != "NodePort" {
		bad("gatewayServiceType", c.GatewayServiceType, "want LoadBalancer or NodePort")
	} else if c.NeedsSSH() && c.GatewayServiceType != "LoadBalancer" {
		bad("gatewayServiceType", c.GatewayServiceType, "want LoadBalancer on target %s: MetalLB gives Kong the VM's address", c.Target)
	}
	c.validateImage(bad)
	if c.AppReplicas < 1 || c.AppReplicas > 20 {
		bad("appReplicas", c.AppReplicas, "want 1 to 20")
	}
	if c.RateLimitPerMinute < 1 {
		bad("rateLimitPerMinute", c.RateLimitPerMinute, "want at least 1 request per minute")
	}
	if c.DBStorageGiB < 1 || c.DBStorageGiB > 500 {
		bad("dbStorageGiB", c.DBStorageGiB, "want 1 to 500")
	}
	if c.NeedsSSH() && c.Observability {
		errs = append(errs, c.validateAlerts()...)
	}
	if !c.hasDBPassword {
		bad("dbPassword", nil, "required; set it with: pulumi config set --secret dbPassword \"$(openssl rand -base64 24)\"")
	}
	switch {
	case c.DBReclaimPolicy != "Delete" && c.DBReclaimPolicy != "Retain":
		bad("dbReclaimPolicy", c.DBReclaimPolicy, "want Delete (destroy deletes the database's data) or Retain (the volume outlives destroy)")
	case c.DBReclaimPolicy == "Retain" && !c.NeedsSSH():
		bad("dbReclaimPolicy", c.DBReclaimPolicy, "Retain declares a StorageClass for MicroK8s' hostpath provisioner, which target %s does not run; give that cluster's default class reclaimPolicy Retain instead", c.Target)
	}
	return errors.Join(errs...)
}

// NeedsSSH reports whether the target installs MicroK8s over SSH.
func (c Config) NeedsSSH() bool { return c.Target != TargetKubeconfig }

// AdminPasswordOrNil is dbAdminPassword when it is set.
func (c Config) AdminPasswordOrNil() *pulumi.StringOutput {
	if !c.hasDBAdminPassword {
		return nil
	}
	return &c.DBAdminPassword
}

func prefix(n *net.IPNet) int { ones, _ := n.Mask.Size(); return ones }

func validHost(h string) bool {
	if net.ParseIP(h) != nil {
		return true
	}
	return len(h) <= 253 && hostRe.MatchString(h)
}

func describe(value any, msg string) string {
	if value == nil {
		return "not set; " + msg
	}
	return fmt.Sprintf("%#v %s", value, msg)
}

func short(s string) string {
	if len(s) > 40 {
		return s[:37] + "..."
	}
	return s
}

// DefaultChannel is the MicroK8s snap channel of a new stack: 1.35, whose
// observability addon installs kube-prometheus-stack 77.6.2
// (canonical/microk8s-core-addons branch 1.35, addons/observability/enable);
// 1.32's is past upstream support.
const DefaultChannel = "1.35/stable"

// checkChannel accepts classic channels <major>.<minor>/<risk>. A -strict
// channel installs the strictly confined snap, which the install scripts do
// not handle: its users join the group snap_microk8s, not microk8s, and it
// confines the paths the scripts edit (canonical/microk8s branch
// 1.35-strict, snap/snapcraft.yaml "confinement: strict").
//
// Moves between channels are checked on the host, against the version that
// is installed there (scripts/microk8s/install-microk8s.sh): a downgrade, or
// a jump over a minor version, is refused before anything changes.
func checkChannel(ch string) error {
	m := channelRe.FindStringSubmatch(ch)
	switch {
	case m == nil:
		return fmt.Errorf("want a snap channel <major>.<minor>/<risk>, such as %s", DefaultChannel)
	case m[3] != "":
		return fmt.Errorf("is a strictly confined channel (group snap_microk8s, confined paths), which the install scripts do not support; want the classic %s.%s/%s", m[1], m[2], m[4])
	}
	return nil
}

// validateAlerts checks the alert receivers: at least one, each complete.
func (c Config) validateAlerts() []error {
	var errs []error
	bad := func(key string, value any, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", key, describe(value, fmt.Sprintf(format, args...))))
	}
	if len(c.AlertEmails) == 0 && c.alertWebhook == "" {
		bad("alertEmails", nil, "alerts would reach nobody: set alertEmails (with alertSmtpHost and alertSmtpFrom) and/or alertWebhookUrl (pulumi config set --secret alertWebhookUrl https://...), or observability false")
	}
	for i, e := range c.AlertEmails {
		if a, err := mail.ParseAddress(e); err != nil || a.Address != e {
			bad(fmt.Sprintf("alertEmails[%d]", i), e, "want an e-mail address such as ops@example.com")
		}
	}
	if len(c.AlertEmails) > 0 {
		if host, port, err := net.SplitHostPort(c.AlertSMTPHost); err != nil || !validHost(host) || port == "" {
			bad("alertSmtpHost", c.AlertSMTPHost, "want the mail relay as host:port, such as email-smtp.us-east-1.amazonaws.com:587")
		}
		if a, err := mail.ParseAddress(c.AlertSMTPFrom); err != nil || a.Address != c.AlertSMTPFrom {
			bad("alertSmtpFrom", c.AlertSMTPFrom, "want the sender's e-mail address, such as alerts@example.com")
		}
		if c.AlertSMTPUsername != "" && !c.hasSMTPPassword {
			bad("alertSmtpPassword", nil, "required with alertSmtpUsername; set it with: pulumi config set --secret alertSmtpPassword")
		}
	}
	if c.alertWebhook != "" {
		if u, err := url.Parse(c.alertWebhook); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			// The value is a secret: name the key, not the value.
			bad("alertWebhookUrl", "(secret)", "is not an http(s) URL")
		}
	}
	if c.PrometheusStorageGiB < 1 || c.PrometheusStorageGiB > 500 {
		bad("prometheusStorageGiB", c.PrometheusStorageGiB, "want 1 to 500")
	}
	return errs
}
