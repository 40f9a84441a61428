package observability

import (
	"fmt"
	"strings"

	corev1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/core/v1"
	metav1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/meta/v1"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
	"gopkg.in/yaml.v3"
)

// Receiver is where alerts go: e-mail through an SMTP relay, a webhook, or
// both. Password and WebhookURL are secrets.
type Receiver struct {
	Emails             []string
	SMTPHost, SMTPFrom string // host:port, sender
	SMTPUsername       string
	SMTPPassword       pulumi.StringInput // nil: no SMTP auth
	WebhookURL         pulumi.StringInput // nil: no webhook
}

// ReceiverName is the receiver every alert but the always-firing ones goes
// to.
const ReceiverName = "platform"

// AlertmanagerConfig renders alertmanager.yaml for r, with the secret values
// given in clear (the result is stored only as a secret). The route and the
// inhibit rules are kube-prometheus-stack 77.6.2's defaults
// (prometheus-community/helm-charts, charts/kube-prometheus-stack/values.yaml,
// alertmanager.config) with its catch-all 'null' receiver replaced by ours;
// Watchdog (always firing, a dead man's switch) and InfoInhibitor (a helper)
// still go to 'null'.
func AlertmanagerConfig(r Receiver, smtpPassword, webhookURL string) (string, error) {
	global := map[string]any{"resolve_timeout": "5m"}
	rcv := map[string]any{"name": ReceiverName}
	if len(r.Emails) > 0 {
		global["smtp_smarthost"] = r.SMTPHost
		global["smtp_from"] = r.SMTPFrom
		global["smtp_require_tls"] = true
		if r.SMTPUsername != "" {
			global["smtp_auth_username"] = r.SMTPUsername
			global["smtp_auth_password"] = smtpPassword
		}
		rcv["email_configs"] = []any{map[string]any{"to": strings.Join(r.Emails, ", "), "send_resolved": true}}
	}
	if webhookURL != "" {
		rcv["webhook_configs"] = []any{map[string]any{"url": webhookURL, "send_resolved": true}}
	}
	if len(rcv) == 1 {
		return "", fmt.Errorf("observability: no alert receiver (e-mail or webhook)")
	}
	matchers := func(m ...string) []any {
		out := make([]any, len(m))
		for i, s := range m {
			out[i] = s
		}
		return out
	}
	cfg := map[string]any{
		"global": global,
		"route": map[string]any{
			"receiver":        ReceiverName,
			"group_by":        []any{"namespace", "alertname"},
			"group_wait":      "30s",
			"group_interval":  "5m",
			"repeat_interval": "12h",
			"routes": []any{
				map[string]any{"receiver": "null", "matchers": matchers(`alertname = "Watchdog"`)},
				map[string]any{"receiver": "null", "matchers": matchers(`alertname = "InfoInhibitor"`)},
			},
		},
		"inhibit_rules": []any{
			map[string]any{"source_matchers": matchers("severity = critical"), "target_matchers": matchers("severity =~ warning|info"), "equal": []any{"namespace", "alertname"}},
			map[string]any{"source_matchers": matchers("severity = warning"), "target_matchers": matchers("severity = info"), "equal": []any{"namespace", "alertname"}},
			map[string]any{"source_matchers": matchers("alertname = InfoInhibitor"), "target_matchers": matchers("severity = info"), "equal": []any{"namespace"}},
			map[string]any{"target_matchers": matchers("alertname = InfoInhibitor")},
		},
		"receivers": []any{map[string]any{"name": "null"}, rcv},
	}
	b, err := yaml.Marshal(cfg)
	return string(b), err
}

// alertmanagerSecret declares the Secret the addon's Alertmanager reads its
// configuration from (key alertmanager.yaml): kube-prometheus-stack is
// installed with alertmanagerSpec.useExistingSecret and configSecret = name
// (scripts/microk8s/enable-addons.sh), and the Prometheus operator mounts the
// named Secret's alertmanager.yaml as the configuration (prometheus-operator
// API, AlertmanagerSpec.configSecret).
func alertmanagerSecret(ctx *pulumi.Context, name, secretName string, r Receiver, opts ...pulumi.ResourceOption) (*corev1.Secret, error) {
	pw, hook := pulumi.StringInput(pulumi.String("")), pulumi.StringInput(pulumi.String(""))
	if r.SMTPPassword != nil {
		pw = r.SMTPPassword
	}
	if r.WebhookURL != nil {
		hook = r.WebhookURL
	}
	body := pulumi.All(pw, hook).ApplyT(func(v []any) (string, error) {
		return AlertmanagerConfig(r, v[0].(string), v[1].(string))
	}).(pulumi.StringOutput)
	return corev1.NewSecret(ctx, name, &corev1.SecretArgs{
		Metadata: &metav1.ObjectMetaArgs{
			Name:      pulumi.String(secretName),
			Namespace: pulumi.String(Namespace),
			Labels:    Component.Labels(),
		},
		Type:       pulumi.String("Opaque"),
		StringData: pulumi.StringMap{"alertmanager.yaml": pulumi.ToSecret(body).(pulumi.StringOutput)},
	}, opts...)
}
