package dlmemu

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
)

func do(t *testing.T, h http.Handler, method, path, body string) (int, map[string]any, http.Header) {
	t.Helper()
	req := httptest.NewRequest(method, path, strings.NewReader(body))
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	var out map[string]any
	b, _ := io.ReadAll(rec.Body)
	_ = json.Unmarshal(b, &out)
	return rec.Code, out, rec.Header()
}

const create = `{"ExecutionRoleArn":"arn:aws:iam::123456789012:role/p-snapshots","Description":"Daily snapshots of p-dev-data","State":"ENABLED",
"PolicyDetails":{"ResourceTypes":["VOLUME"],"TargetTags":[{"Key":"d","Value":"p-dev-data"}],
"Schedules":[{"Name":"daily","CopyTags":true,"CreateRule":{"Interval":24,"IntervalUnit":"HOURS","Times":["03:00"]},"RetainRule":{"Interval":7,"IntervalUnit":"DAYS"}}]},
"Tags":{"project":"p","stack":"dev"}}`

// A policy's whole life, as the provider drives it: create, read, update,
// tag, untag, delete, and a read of the deleted one answered NotFound.
func TestPolicyLifecycle(t *testing.T) {
	s := New("123456789012", "us-east-1")
	code, out, _ := do(t, s, "POST", "/policies", create)
	id, _ := out["PolicyId"].(string)
	if code != 200 || !strings.HasPrefix(id, "policy-") {
		t.Fatalf("create: %d %v", code, out)
	}
	code, out, _ = do(t, s, "GET", "/policies/"+id+"/", "")
	pol, _ := out["Policy"].(map[string]any)
	if code != 200 || pol["State"] != "ENABLED" || pol["PolicyArn"] != "arn:aws:dlm:us-east-1:123456789012:policy/"+id {
		t.Fatalf("get: %d %v", code, out)
	}
	if code, _, _ = do(t, s, "PATCH", "/policies/"+id, `{"State":"DISABLED"}`); code != 200 || s.Policies()[0].State != "DISABLED" {
		t.Errorf("update: %d, state %s", code, s.Policies()[0].State)
	}
	arn := url.PathEscape(pol["PolicyArn"].(string))
	if code, _, _ = do(t, s, "POST", "/tags/"+arn, `{"Tags":{"cost-center":"platform"}}`); code != 204 {
		t.Errorf("tag: %d", code)
	}
	if code, _, _ = do(t, s, "DELETE", "/tags/"+arn+"?tagKeys=stack", ""); code != 204 {
		t.Errorf("untag: %d", code)
	}
	_, out, _ = do(t, s, "GET", "/tags/"+arn, "")
	if tags, _ := out["Tags"].(map[string]any); tags["cost-center"] != "platform" || tags["stack"] != nil || tags["project"] != "p" {
		t.Errorf("tags %v", out)
	}
	if code, _, _ = do(t, s, "DELETE", "/policies/"+id+"/", ""); code != 200 || len(s.Policies()) != 0 {
		t.Errorf("delete: %d, %d left", code, len(s.Policies()))
	}
	code, _, h := do(t, s, "GET", "/policies/"+id+"/", "")
	if code != 404 || h.Get("X-Amzn-Errortype") != "ResourceNotFoundException" {
		t.Errorf("a deleted policy: %d %s", code, h.Get("X-Amzn-Errortype"))
	}
}

// What the API reference says a create must carry is refused without it.
func TestCreateIsChecked(t *testing.T) {
	s := New("123456789012", "us-east-1")
	for name, body := range map[string]string{
		"description pattern": strings.Replace(create, "Daily snapshots of p-dev-data", "Daily snapshots: p/dev", 1),
		"role ARN":            strings.Replace(create, "arn:aws:iam::123456789012:role/p-snapshots", "p-snapshots", 1),
		"state":               strings.Replace(create, `"State":"ENABLED"`, `"State":"ON"`, 1),
		"no retain rule":      strings.Replace(create, `,"RetainRule":{"Interval":7,"IntervalUnit":"DAYS"}`, "", 1),
		"no role":             strings.Replace(create, `"ExecutionRoleArn":"arn:aws:iam::123456789012:role/p-snapshots",`, "", 1),
	} {
		code, _, h := do(t, s, "POST", "/policies", body)
		if code != 400 || h.Get("X-Amzn-Errortype") != "InvalidRequestException" {
			t.Errorf("%s: %d %s", name, code, h.Get("X-Amzn-Errortype"))
		}
	}
	if len(s.Policies()) != 0 {
		t.Errorf("a refused create left %d policies", len(s.Policies()))
	}
}

// Front answers DLM-signed requests itself and passes the rest on.
func TestFrontRoutesBySigningService(t *testing.T) {
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, "upstream") }))
	defer upstream.Close()
	s := New("123456789012", "us-east-1")
	u, stop, err := Front(s, upstream.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	for service, want := range map[string]string{"dlm": `"Policies"`, "ec2": "upstream"} {
		req, _ := http.NewRequest("GET", u+"/policies", nil)
		req.Header.Set("Authorization", "AWS4-HMAC-SHA256 Credential=AKID/20261204/us-east-1/"+service+"/aws4_request, SignedHeaders=host, Signature=0")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if !strings.Contains(string(b), want) {
			t.Errorf("%s: %q, want %s", service, b, want)
		}
	}
	if _, _, err := Front(s, "http://10.0.0.1:5000"); err == nil {
		t.Error("Front forwards to a non-loopback address")
	}
}
