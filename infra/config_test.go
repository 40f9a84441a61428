package infra

import (
	"strings"
	"testing"

	mt "microk8s-platform/infra/internal/mocktest"
)

// Each bad configuration fails with its own message, naming the key, the
// value and what is accepted, and declares no resource at all.
func TestInvalidConfigsDeclareNothing(t *testing.T) {
	base := userKeys(mt.StackFile(t, "dev"))
	cases := []struct {
		name string
		set  map[string]string
		want []string
	}{
		{"unknown target", map[string]string{"target": "azure"}, []string{`target: "azure" want one of aws, gcp, ssh, kubeconfig`}},
		{"subnet not /24", map[string]string{"subnetCidr": "10.0.0.0/20"}, []string{`subnetCidr: "10.0.0.0/20" want a /24`}},
		{"subnet outside VPC", map[string]string{"subnetCidr": "10.9.1.0/24"}, []string{`subnetCidr: "10.9.1.0/24" is not inside vpcCidr 10.0.0.0/16`}},
		{"subnet not a CIDR", map[string]string{"subnetCidr": "10.0.1.0"}, []string{`subnetCidr: "10.0.1.0" want an IPv4 /24`}},
		{"vpc too small", map[string]string{"vpcCidr": "10.0.0.0/28"}, []string{`vpcCidr: "10.0.0.0/28" want a prefix between /16 and /24`}},
		{"admin open to the world", map[string]string{"adminCidrs": `["0.0.0.0/0"]`}, []string{`adminCidrs[0]: "0.0.0.0/0" opens SSH and the Kubernetes API to the whole internet`}},
		{"admin open to the world v6", map[string]string{"adminCidrs": `["203.0.113.7/32","::/0"]`}, []string{`adminCidrs[1]: "::/0" opens SSH`}},
		{"admin host bits", map[string]string{"adminCidrs": `["203.0.113.7/24"]`}, []string{`adminCidrs[0]: "203.0.113.7/24" has host bits set; want 203.0.113.0/24`}},
		{"admin missing", map[string]string{"adminCidrs": ""}, []string{`adminCidrs: not set; required for target aws`}},
		{"admin not a list", map[string]string{"adminCidrs": `203.0.113.7/32`}, []string{`adminCidrs: "203.0.113.7/32" is not a list of strings`}},
		{"no public key", map[string]string{"sshPublicKey": ""}, []string{`sshPublicKey: "" want an OpenSSH public key line`}},
		{"bad channel", map[string]string{"microk8sChannel": "latest"}, []string{`microk8sChannel: "latest" want a snap channel <major>.<minor>/<risk>, such as 1.35/stable`}},
		// canonical/microk8s branch 1.35-strict snap/snapcraft.yaml: "confinement: strict", group snap_microk8s.
		{"strict channel", map[string]string{"microk8sChannel": "1.35-strict/stable"}, []string{`microk8sChannel: "1.35-strict/stable" is a strictly confined channel (group snap_microk8s, confined paths), which the install scripts do not support; want the classic 1.35/stable`}},
		{"no alert receiver", map[string]string{"alertWebhookUrl": ""}, []string{`alertEmails: not set; alerts would reach nobody: set alertEmails (with alertSmtpHost and alertSmtpFrom) and/or alertWebhookUrl`}},
		{"webhook not a URL", map[string]string{"alertWebhookUrl": "hooks.example.com/x"}, []string{`alertWebhookUrl: "(secret)" is not an http(s) URL`}},
		{"email without relay", map[string]string{"alertEmails": `["ops@example.com"]`}, []string{`alertSmtpHost: "" want the mail relay as host:port`, `alertSmtpFrom: "" want the sender's e-mail address`}},
		{"bad alert email", map[string]string{"alertEmails": `["ops"]`, "alertSmtpHost": "smtp.example.com:587", "alertSmtpFrom": "alerts@example.com"}, []string{`alertEmails[0]: "ops" want an e-mail address`}},
		{"smtp user without password", map[string]string{"alertEmails": `["ops@example.com"]`, "alertSmtpHost": "smtp.example.com:587", "alertSmtpFrom": "alerts@example.com", "alertSmtpUsername": "AKIA"}, []string{`alertSmtpPassword: not set; required with alertSmtpUsername`}},
		{"prometheus volume too small", map[string]string{"prometheusStorageGiB": "0"}, []string{`prometheusStorageGiB: 0 want 1 to 500`}},
		{"zero replicas", map[string]string{"appReplicas": "0"}, []string{`appReplicas: 0 want 1 to 20`}},
		{"replicas not a number", map[string]string{"appReplicas": "two"}, []string{`appReplicas: "two" is not a whole number`}},
		{"spot not a bool", map[string]string{"spot": "sometimes"}, []string{`spot: "sometimes" is not true or false`}},
		{"budget not a number", map[string]string{"budgetMonthlyUsd": "lots"}, []string{`budgetMonthlyUsd: "lots" is not a number`}},
		{"latest tag", map[string]string{"appImage": "ghcr.io/acme/comments", "appTag": "latest"}, []string{`appTag: "latest" want a pinned image tag`}},
		{"image with tag", map[string]string{"appImage": "ghcr.io/acme/comments:1.0"}, []string{`appImage: "ghcr.io/acme/comments:1.0" want an image repository without a tag`}},
		{"bad budget email", map[string]string{"budgetEmails": `["ops@example.com","not-an-address"]`}, []string{`budgetEmails[1]: "not-an-address" want an e-mail address`}},
		{"budget not positive", map[string]string{"budgetMonthlyUsd": "0"}, []string{`budgetMonthlyUsd: 0 want a positive amount`}},
		{"no region", map[string]string{"aws:region": ""}, []string{`aws:region: not set; required for target aws`}},
		{"tiny disk", map[string]string{"rootVolumeGiB": "8"}, []string{`rootVolumeGiB: 8 want 20 to 1024`}},
		{"old ubuntu", map[string]string{"ubuntuRelease": "20.04"}, []string{`ubuntuRelease: "20.04" want one of 22.04, 24.04`}},
		{"nodeport on a VM", map[string]string{"gatewayServiceType": "NodePort"}, []string{`gatewayServiceType: "NodePort" want LoadBalancer on target aws`}},
		{"gcp without project", map[string]string{"target": "gcp"}, []string{`gcp:project: not set; required for target gcp`}},
		{"ssh without host", map[string]string{"target": "ssh"}, []string{`sshHost: "" required for target ssh`}},
		{"ssh private ip not an address", map[string]string{"target": "ssh", "sshHost": "vm.example.com", "sshPrivateIp": "vm.internal"}, []string{`sshPrivateIp: "vm.internal" want the host's own IPv4 address`}},
		{"dataDir on aws", map[string]string{"dataDir": "/srv/data"}, []string{`dataDir: "/srv/data" only for target ssh`}},
		{"dataDir relative", map[string]string{"target": "ssh", "sshHost": "vm.example.com", "dataDir": "data"}, []string{`dataDir: "data" want an absolute, clean path`}},
		{"dataDir the root", map[string]string{"target": "ssh", "sshHost": "vm.example.com", "dataDir": "/data"}, []string{`dataDir: "/data" want an absolute, clean path at least two levels deep`}},
		{"dataDir unclean", map[string]string{"target": "ssh", "sshHost": "vm.example.com", "dataDir": "/srv/../etc"}, []string{`dataDir: "/srv/../etc" want an absolute, clean path`}},
		{"dataDir with a space", map[string]string{"target": "ssh", "sshHost": "vm.example.com", "dataDir": "/srv/my data"}, []string{`dataDir: "/srv/my data" want an absolute, clean path`}},
		{"several at once", map[string]string{"subnetCidr": "10.0.0.0/20", "appReplicas": "0", "microk8sChannel": "x"}, []string{"subnetCidr:", "appReplicas:", "microk8sChannel:"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			m, err := mt.Run(t, "dev", base.Set(c.set), Run)
			if err == nil {
				t.Fatal("program succeeded")
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error lacks %q:\n%v", w, err)
				}
			}
			if n := len(m.Resources); n != 0 {
				t.Errorf("%d resources declared before validation failed", n)
			}
		})
	}
}

func TestMissingSecretsAreNamedWithTheCommandToSetThem(t *testing.T) {
	c := mt.StackFile(t, "dev").Set(map[string]string{"adminCidrs": `["` + adminCIDR + `"]`, "sshPublicKey": pubKey})
	m, err := mt.Run(t, "dev", c, Run)
	if err == nil {
		t.Fatal("program succeeded without secrets")
	}
	for _, w := range []string{
		"sshPrivateKey: not set; required for target aws; set it with: pulumi config set --secret sshPrivateKey",
		"dbPassword: not set; required; set it with: pulumi config set --secret dbPassword",
	} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error lacks %q:\n%v", w, err)
		}
	}
	if len(m.Resources) != 0 {
		t.Error("resources declared")
	}
}

func TestCommittedStackFilesAreValidOnceUserKeysAreSet(t *testing.T) {
	for _, stack := range []string{"dev", "prod", "local"} {
		c := mt.StackFile(t, stack)
		if stack != "local" {
			c = userKeys(c)
		} else {
			c = localStack(t)
		}
		if _, err := mt.Run(t, stack, c, Run); err != nil {
			t.Errorf("stack %s: %v", stack, err)
		}
	}
}

func TestDefaultsAreDocumentedValues(t *testing.T) {
	d := Defaults()
	if d.SubnetCidr != "10.0.1.0/24" || d.VpcCidr != "10.0.0.0/16" || d.MicroK8sChannel != "1.35/stable" || d.AppReplicas != 1 || d.BudgetMonthlyUSD != 15 || d.AppTag == "latest" {
		t.Fatalf("defaults changed: %+v", d)
	}
}

// A DNS name as sshHost is valid on its own: MetalLB's address is then found
// on the host (its default route), never taken from the name.
func TestSSHHostMayBeADNSName(t *testing.T) {
	c := mt.StackFile(t, "dev").Set(map[string]string{"target": "ssh", "sshHost": "k8s.example.com"}).
		Secret(map[string]string{"sshPrivateKey": privKey, "dbPassword": dbPass, "alertWebhookUrl": alertHook})
	if _, err := mt.Run(t, "dev", c, Run); err != nil {
		t.Fatal(err)
	}
}

// Every committed stack that runs MicroK8s pins a classic channel of the
// current default minor.
func TestCommittedStacksPinTheDefaultChannel(t *testing.T) {
	for _, stack := range []string{"dev", "prod"} {
		if ch := mt.StackFile(t, stack).Values["microk8s-platform:microk8sChannel"]; ch != DefaultChannel {
			t.Errorf("stack %s pins %q, want %s", stack, ch, DefaultChannel)
		}
	}
}
