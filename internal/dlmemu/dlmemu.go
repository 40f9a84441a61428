// Package dlmemu emulates the part of Amazon Data Lifecycle Manager's API
// that terraform-provider-aws's aws_dlm_lifecycle_policy uses, which the
// local AWS emulator (moto 5.2.1) does not have: lifecycle policies
// (create, get, list, update, delete) and their tags, over DLM's REST-JSON
// protocol (AWS DLM API Reference, API version 2018-01-12: POST /policies,
// GET|PATCH|DELETE /policies/{policyId}/, GET /policies, and
// GET|POST|DELETE /tags/{resourceArn}).
//
// Front puts it before moto on one address: a request signed for the dlm
// service (its SigV4 credential scope) is answered here; every other one
// goes to moto. So the real provider runs end to end on this machine, and
// the calls it makes for the policy are recorded like any other (the
// provider tier, infra/backend/providercalls_test.go).
//
// It checks what the API reference says a request must have (the required
// members, the description's pattern, the execution role's ARN form, the
// state's values) and answers a missing policy with
// ResourceNotFoundException, which the provider's read treats as gone. It
// does not take snapshots.
package dlmemu

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"regexp"
	"sort"
	"strings"
	"sync"
	"time"
)

// Policy is one lifecycle policy as GetLifecyclePolicy returns it.
type Policy struct {
	PolicyID         string `json:"PolicyId"`
	PolicyArn        string `json:"PolicyArn"`
	Description      string `json:"Description"`
	State            string `json:"State"`
	StatusMessage    string `json:"StatusMessage"`
	ExecutionRoleArn string `json:"ExecutionRoleArn"`
	// Timestamps are ISO 8601 strings in DLM's model (timestampFormat
	// iso8601), not restJson's default epoch seconds: aws-sdk-go-v2's DLM
	// deserializer, as the provider runs it, refuses a number ("expected
	// Timestamp to be of type string").
	DateCreated   string            `json:"DateCreated"`
	DateModified  string            `json:"DateModified"`
	PolicyDetails json.RawMessage   `json:"PolicyDetails"`
	Tags          map[string]string `json:"Tags"`
	DefaultPolicy bool              `json:"DefaultPolicy"`
}

// Server is the emulator.
type Server struct {
	Account, Region string
	mu              sync.Mutex
	policies        map[string]*Policy
}

// New returns an empty emulator for account and region.
func New(account, region string) *Server {
	return &Server{Account: account, Region: region, policies: map[string]*Policy{}}
}

// Policies returns the policies that exist now.
func (s *Server) Policies() []Policy {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Policy, 0, len(s.policies))
	for _, p := range s.policies {
		out = append(out, *p)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].PolicyID < out[j].PolicyID })
	return out
}

// API Reference patterns (LifecyclePolicy, CreateLifecyclePolicy).
var (
	descriptionRe = regexp.MustCompile(`^[0-9A-Za-z _-]+$`)
	roleARNRe     = regexp.MustCompile(`^arn:aws(-[a-z]{1,3}){0,2}:iam::\d+:role/.*$`)
	policyPathRe  = regexp.MustCompile(`^/policies/(policy-[a-f0-9]+)/?$`)
)

type apiError struct {
	status int
	code   string
	msg    string
}

func (e apiError) Error() string { return e.code + ": " + e.msg }

func invalid(format string, a ...any) error {
	return apiError{http.StatusBadRequest, "InvalidRequestException", fmt.Sprintf(format, a...)}
}

func notFound(id string) error {
	return apiError{http.StatusNotFound, "ResourceNotFoundException", "Policy " + id + " not found"}
}

// ServeHTTP answers one DLM request.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	s.mu.Lock()
	status, out, err := s.route(r.Method, r.URL, body)
	s.mu.Unlock()
	if err != nil {
		e, ok := err.(apiError)
		if !ok {
			e = apiError{http.StatusInternalServerError, "InternalServerException", err.Error()}
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("X-Amzn-Errortype", e.code)
		w.WriteHeader(e.status)
		_ = json.NewEncoder(w).Encode(map[string]string{"Message": e.msg, "Code": e.code})
		return
	}
	if out == nil {
		w.WriteHeader(status)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(out)
}

func (s *Server) route(method string, u *url.URL, body []byte) (int, any, error) {
	path := u.Path
	if rest, ok := strings.CutPrefix(path, "/tags/"); ok {
		arn, err := url.PathUnescape(rest)
		if err != nil {
			return 0, nil, invalid("resource ARN %q: %v", rest, err)
		}
		return s.tags(method, arn, u.Query(), body)
	}
	if strings.TrimSuffix(path, "/") == "/policies" {
		switch method {
		case http.MethodPost:
			return s.create(body)
		case http.MethodGet:
			return s.list(u.Query())
		}
	}
	if m := policyPathRe.FindStringSubmatch(path); m != nil {
		p, ok := s.policies[m[1]]
		if !ok {
			return 0, nil, notFound(m[1])
		}
		switch method {
		case http.MethodGet:
			return http.StatusOK, map[string]any{"Policy": p}, nil
		case http.MethodPatch:
			return s.update(p, body)
		case http.MethodDelete:
			delete(s.policies, p.PolicyID)
			return http.StatusOK, map[string]any{}, nil
		}
	}
	return 0, nil, apiError{http.StatusNotFound, "UnknownOperationException", method + " " + path}
}

type policyInput struct {
	ExecutionRoleArn *string           `json:"ExecutionRoleArn"`
	Description      *string           `json:"Description"`
	State            *string           `json:"State"`
	PolicyDetails    json.RawMessage   `json:"PolicyDetails"`
	Tags             map[string]string `json:"Tags"`
}

func (in policyInput) check(create bool) error {
	if create {
		for name, v := range map[string]*string{"ExecutionRoleArn": in.ExecutionRoleArn, "Description": in.Description, "State": in.State} {
			if v == nil {
				return invalid("%s is required", name)
			}
		}
		if len(in.PolicyDetails) == 0 {
			return invalid("PolicyDetails is required for a custom policy")
		}
	}
	if in.Description != nil && (len(*in.Description) > 500 || !descriptionRe.MatchString(*in.Description)) {
		return invalid("Description %q does not match [0-9A-Za-z _-]+ (500 at most)", *in.Description)
	}
	if in.ExecutionRoleArn != nil && !roleARNRe.MatchString(*in.ExecutionRoleArn) {
		return invalid("ExecutionRoleArn %q is not a role ARN", *in.ExecutionRoleArn)
	}
	if in.State != nil && *in.State != "ENABLED" && *in.State != "DISABLED" {
		return invalid("State %q: want ENABLED or DISABLED", *in.State)
	}
	if len(in.PolicyDetails) > 0 {
		var d struct {
			Schedules []struct {
				Name       string          `json:"Name"`
				CreateRule json.RawMessage `json:"CreateRule"`
				RetainRule json.RawMessage `json:"RetainRule"`
			} `json:"Schedules"`
		}
		if err := json.Unmarshal(in.PolicyDetails, &d); err != nil {
			return invalid("PolicyDetails: %v", err)
		}
		for _, sc := range d.Schedules {
			if len(sc.CreateRule) == 0 || len(sc.RetainRule) == 0 {
				return invalid("schedule %q needs a CreateRule and a RetainRule", sc.Name)
			}
		}
	}
	return nil
}

func now() string { return time.Now().UTC().Format("2006-01-02T15:04:05.000Z") }

func (s *Server) create(body []byte) (int, any, error) {
	var in policyInput
	if err := json.Unmarshal(body, &in); err != nil {
		return 0, nil, invalid("body: %v", err)
	}
	if err := in.check(true); err != nil {
		return 0, nil, err
	}
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	id := "policy-" + hex.EncodeToString(b)
	t := now()
	tags := in.Tags
	if tags == nil {
		tags = map[string]string{}
	}
	s.policies[id] = &Policy{
		PolicyID: id, PolicyArn: fmt.Sprintf("arn:aws:dlm:%s:%s:policy/%s", s.Region, s.Account, id),
		Description: *in.Description, State: *in.State, StatusMessage: "ENABLED",
		ExecutionRoleArn: *in.ExecutionRoleArn, DateCreated: t, DateModified: t,
		PolicyDetails: in.PolicyDetails, Tags: tags,
	}
	return http.StatusOK, map[string]string{"PolicyId": id}, nil
}

func (s *Server) update(p *Policy, body []byte) (int, any, error) {
	var in policyInput
	if err := json.Unmarshal(body, &in); err != nil {
		return 0, nil, invalid("body: %v", err)
	}
	if err := in.check(false); err != nil {
		return 0, nil, err
	}
	if in.Description != nil {
		p.Description = *in.Description
	}
	if in.State != nil {
		p.State = *in.State
	}
	if in.ExecutionRoleArn != nil {
		p.ExecutionRoleArn = *in.ExecutionRoleArn
	}
	if len(in.PolicyDetails) > 0 {
		p.PolicyDetails = in.PolicyDetails
	}
	p.DateModified = now()
	return http.StatusOK, map[string]any{}, nil
}

func (s *Server) list(q url.Values) (int, any, error) {
	var out []map[string]any
	for _, p := range s.policies {
		if ids := q["policyIds"]; len(ids) > 0 && !contains(ids, p.PolicyID) {
			continue
		}
		out = append(out, map[string]any{
			"PolicyId": p.PolicyID, "Description": p.Description, "State": p.State,
			"Tags": p.Tags, "PolicyType": "EBS_SNAPSHOT_MANAGEMENT", "DefaultPolicy": false,
		})
	}
	return http.StatusOK, map[string]any{"Policies": out}, nil
}

func contains(list []string, v string) bool {
	for _, e := range list {
		if e == v {
			return true
		}
	}
	return false
}

func (s *Server) byARN(arn string) (*Policy, error) {
	for _, p := range s.policies {
		if p.PolicyArn == arn {
			return p, nil
		}
	}
	return nil, apiError{http.StatusNotFound, "ResourceNotFoundException", "no policy " + arn}
}

func (s *Server) tags(method, arn string, q url.Values, body []byte) (int, any, error) {
	p, err := s.byARN(arn)
	if err != nil {
		return 0, nil, err
	}
	switch method {
	case http.MethodGet:
		return http.StatusOK, map[string]any{"Tags": p.Tags}, nil
	case http.MethodPost:
		var in struct {
			Tags map[string]string `json:"Tags"`
		}
		if err := json.Unmarshal(body, &in); err != nil || len(in.Tags) == 0 {
			return 0, nil, invalid("Tags is required")
		}
		for k, v := range in.Tags {
			p.Tags[k] = v
		}
		return http.StatusNoContent, nil, nil
	case http.MethodDelete:
		keys := q["tagKeys"]
		if len(keys) == 0 {
			return 0, nil, invalid("tagKeys is required")
		}
		for _, k := range keys {
			delete(p.Tags, k)
		}
		return http.StatusNoContent, nil, nil
	}
	return 0, nil, apiError{http.StatusNotFound, "UnknownOperationException", method + " /tags/"}
}

var scopeRe = regexp.MustCompile(`Credential=[^/,\s]+/[0-9]{8}/[^/]+/([^/]+)/aws4_request`)

// Front serves DLM's requests on a new 127.0.0.1 address and passes every
// other one to upstream (moto's URL, on loopback). It returns the
// address's URL and a function that stops it.
func Front(s *Server, upstream string) (string, func() error, error) {
	u, err := url.Parse(upstream)
	if err != nil {
		return "", nil, err
	}
	if h := u.Hostname(); h != "127.0.0.1" && h != "localhost" {
		return "", nil, fmt.Errorf("dlmemu forwards to loopback only, not %s", h)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	proxy := httputil.NewSingleHostReverseProxy(u)
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if m := scopeRe.FindStringSubmatch(r.Header.Get("Authorization")); m != nil && m[1] == "dlm" {
			s.ServeHTTP(w, r)
			return
		}
		proxy.ServeHTTP(w, r)
	}), ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(l) }()
	return "http://" + l.Addr().String(), srv.Close, nil
}
