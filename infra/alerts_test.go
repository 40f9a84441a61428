package infra

import (
	"strings"
	"testing"

	"microk8s-platform/infra/cluster"
	mt "microk8s-platform/infra/internal/mocktest"
	"microk8s-platform/infra/observability"
)

// On a MicroK8s of ours the addon's Alertmanager reads its configuration
// from the Secret the program writes (the addons step installs
// kube-prometheus-stack with configSecret = that name): it routes to the
// stack's receivers, and the webhook URL and SMTP password stay secrets.
func TestAlertsGoToTheConfiguredReceivers(t *testing.T) {
	c := userKeys(mt.StackFile(t, "dev")).Set(map[string]string{
		"alertEmails": `["ops@example.com"]`, "alertSmtpHost": "email-smtp.us-east-1.amazonaws.com:587",
		"alertSmtpFrom": "alerts@example.com", "alertSmtpUsername": "AKIAEXAMPLE",
	}).Secret(map[string]string{"alertSmtpPassword": "smtp-s3cret"})
	m, _ := run(t, "dev", c)
	sec := m.One(t, "kubernetes:core/v1:Secret", "observability-alertmanager")
	if mt.Str(sec.Inputs, "metadata.name") != cluster.AlertmanagerSecret || mt.Str(sec.Inputs, "metadata.namespace") != observability.Namespace {
		t.Fatalf("secret %s/%s", mt.Str(sec.Inputs, "metadata.namespace"), mt.Str(sec.Inputs, "metadata.name"))
	}
	v := mt.Get(sec.Inputs, "stringData")
	am, ok := v.ObjectValue()["alertmanager.yaml"]
	if !ok || !mt.IsSecret(sec.Inputs, "stringData") {
		t.Fatalf("alertmanager.yaml missing or not a secret: %v", sec.Inputs["stringData"])
	}
	if am.IsSecret() {
		am = am.SecretValue().Element
	}
	body := am.StringValue()
	for _, want := range []string{"receiver: platform", "to: ops@example.com", "url: " + alertHook, "smtp_auth_password: smtp-s3cret", "smtp_smarthost: email-smtp.us-east-1.amazonaws.com:587"} {
		if !strings.Contains(body, want) {
			t.Errorf("alertmanager.yaml lacks %q:\n%s", want, body)
		}
	}
	// The addons step points kube-prometheus-stack at that Secret.
	addons := m.One(t, "command:remote:Command", "microk8s-addons")
	if cr := mt.Str(addons.Inputs, "create"); !strings.Contains(cr, "ALERTMANAGER_SECRET='"+cluster.AlertmanagerSecret+"'") {
		t.Errorf("addons create = %q", cr)
	}
	// An existing cluster's Alertmanager is not ours to configure.
	mLocal, _ := run(t, "local", mt.StackFile(t, "local").Set(map[string]string{"observability": "true", "appImage": "ghcr.io/acme/comments", "appTag": "1.0.0"}).Secret(map[string]string{"dbPassword": dbPass}))
	if n := len(mLocal.ByType("kubernetes:core/v1:Secret")); n > 0 {
		for _, r := range mLocal.ByType("kubernetes:core/v1:Secret") {
			if mt.Str(r.Inputs, "metadata.name") == cluster.AlertmanagerSecret {
				t.Error("target kubeconfig writes an Alertmanager configuration")
			}
		}
	}
}
