package observability

import (
	"encoding/json"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

type amConfig struct {
	Global map[string]any `yaml:"global"`
	Route  struct {
		Receiver string `yaml:"receiver"`
		Routes   []struct {
			Receiver string   `yaml:"receiver"`
			Matchers []string `yaml:"matchers"`
		} `yaml:"routes"`
	} `yaml:"route"`
	Receivers []struct {
		Name   string `yaml:"name"`
		Emails []struct {
			To           string `yaml:"to"`
			SendResolved bool   `yaml:"send_resolved"`
		} `yaml:"email_configs"`
		Webhooks []struct {
			URL string `yaml:"url"`
		} `yaml:"webhook_configs"`
	} `yaml:"receivers"`
	Inhibit []map[string]any `yaml:"inhibit_rules"`
}

func parse(t *testing.T, s string) amConfig {
	t.Helper()
	var c amConfig
	if err := yaml.Unmarshal([]byte(s), &c); err != nil {
		t.Fatalf("%v\n%s", err, s)
	}
	return c
}

// kube-prometheus-stack 77.6.2's own configuration routes everything to the
// 'null' receiver (charts/kube-prometheus-stack/values.yaml,
// alertmanager.config.route.receiver: 'null'). Ours sends every alert to
// the configured receiver, except Watchdog (always firing by design) and
// InfoInhibitor, which stay on 'null' as upstream routes them.
func TestAlertsReachTheReceiver(t *testing.T) {
	r := Receiver{Emails: []string{"ops@example.com", "oncall@example.com"}, SMTPHost: "smtp.example.com:587", SMTPFrom: "alerts@example.com", SMTPUsername: "AKIA"}
	s, err := AlertmanagerConfig(r, "pw", "https://hooks.example.com/x")
	if err != nil {
		t.Fatal(err)
	}
	c := parse(t, s)
	if c.Route.Receiver != ReceiverName {
		t.Fatalf("default route goes to %q", c.Route.Receiver)
	}
	for _, rt := range c.Route.Routes {
		if rt.Receiver == "null" && len(rt.Matchers) == 1 && (rt.Matchers[0] == `alertname = "Watchdog"` || rt.Matchers[0] == `alertname = "InfoInhibitor"`) {
			continue
		}
		t.Errorf("route %+v sends alerts elsewhere", rt)
	}
	var ours bool
	for _, rc := range c.Receivers {
		if rc.Name != ReceiverName {
			continue
		}
		ours = true
		if len(rc.Emails) != 1 || rc.Emails[0].To != "ops@example.com, oncall@example.com" || !rc.Emails[0].SendResolved {
			t.Errorf("email: %+v", rc.Emails)
		}
		if len(rc.Webhooks) != 1 || rc.Webhooks[0].URL != "https://hooks.example.com/x" {
			t.Errorf("webhook: %+v", rc.Webhooks)
		}
	}
	if !ours {
		t.Fatal("no platform receiver")
	}
	g := c.Global
	if g["smtp_smarthost"] != "smtp.example.com:587" || g["smtp_from"] != "alerts@example.com" || g["smtp_auth_username"] != "AKIA" || g["smtp_auth_password"] != "pw" || g["smtp_require_tls"] != true {
		t.Errorf("global: %v", g)
	}
	if len(c.Inhibit) != 4 {
		t.Errorf("inhibit rules: %v", c.Inhibit)
	}
}

func TestWebhookOnlyAndNoReceiver(t *testing.T) {
	s, err := AlertmanagerConfig(Receiver{}, "", "https://hooks.example.com/x")
	if err != nil {
		t.Fatal(err)
	}
	c := parse(t, s)
	if _, ok := c.Global["smtp_smarthost"]; ok || strings.Contains(s, "email_configs") {
		t.Errorf("e-mail settings without e-mail:\n%s", s)
	}
	if _, err := AlertmanagerConfig(Receiver{}, "", ""); err == nil {
		t.Fatal("a configuration with no receiver was accepted")
	}
}

// The dashboards load on the addon's Grafana: their schemaVersion is one
// Grafana 12.1.1 migrates to (see GrafanaSchemaVersion for the sources).
func TestDashboardsFitTheAddonsGrafana(t *testing.T) {
	for _, d := range Dashboards() {
		b, err := d.Build()
		if err != nil {
			t.Fatal(err)
		}
		var v struct {
			SchemaVersion int `json:"schemaVersion"`
		}
		if err := json.Unmarshal(b, &v); err != nil {
			t.Fatal(err)
		}
		if v.SchemaVersion == 0 || v.SchemaVersion > 41 {
			t.Errorf("%s: schemaVersion %d, Grafana 12.1.1 knows up to 41", d.UID, v.SchemaVersion)
		}
	}
}
