// Package awsrecord records what real programs ask of AWS: a reverse proxy
// on 127.0.0.1 in front of the local emulator (moto_server) that keeps
// every request with the principal that signed it, and turns each one into
// the IAM authorisation requests AWS would evaluate for it, so a test can
// check the calls of the real Pulumi CLI, of our scripts and of the
// workflows' steps against the role that makes them.
//
// The principal is the access key id of the request's SigV4 credential
// scope (moto accepts any key): a test gives each role's processes
// AWS_ACCESS_KEY_ID=<role name>.
//
// What a call is authorised against comes from the request itself (the
// service from the credential scope, the operation from X-Amz-Target, the
// Action parameter or the S3 REST method and path, resources from its
// parameters) and, where AWS authorises more than the request names, from
// the AWS documentation cited next to each rule (Authz). A call it cannot
// map is an error, never a guess.
package awsrecord

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"regexp"
	"strings"
	"sync"
)

// Call is one request as it reached the emulator.
type Call struct {
	Principal string // the access key id that signed it
	Service   string // s3, kms, dynamodb, ec2, sts, ... (SigV4 scope)
	Operation string // API operation: GetObject, Decrypt, GetItem, DescribeTags
	Method    string
	Path      string
	Query     url.Values
	Header    http.Header
	Body      []byte
	Status    int    // the emulator's answer
	Response  []byte // its body (KMS names the key it used there)
	Tag       string // what the test was doing (Recorder.SetTag)
}

func (c Call) String() string {
	return fmt.Sprintf("%s %s:%s %s %s (%d)", c.Principal, c.Service, c.Operation, c.Method, c.Path, c.Status)
}

// Recorder is the recording proxy.
type Recorder struct {
	URL      string // what AWS_ENDPOINT_URL should name
	upstream *url.URL
	srv      *http.Server
	mu       sync.Mutex
	calls    []Call
	tag      string
}

// Start listens on 127.0.0.1 and forwards to upstream (moto's URL).
func Start(upstream string) (*Recorder, error) {
	u, err := url.Parse(upstream)
	if err != nil {
		return nil, err
	}
	if h := u.Hostname(); h != "127.0.0.1" && h != "localhost" {
		return nil, fmt.Errorf("awsrecord forwards to loopback only, not %s", h)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	r := &Recorder{URL: "http://" + l.Addr().String(), upstream: u}
	proxy := httputil.NewSingleHostReverseProxy(u)
	proxy.ModifyResponse = func(resp *http.Response) error {
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			return err
		}
		resp.Body = io.NopCloser(bytes.NewReader(body))
		c := resp.Request.Context().Value(callKey{}).(*Call)
		c.Status, c.Response = resp.StatusCode, body
		return nil
	}
	r.srv = &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, err := io.ReadAll(req.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		req.Body = io.NopCloser(bytes.NewReader(body))
		c := &Call{
			Method: req.Method, Path: req.URL.Path, Query: req.URL.Query(), Header: req.Header.Clone(), Body: body,
		}
		c.Principal, c.Service = credentialScope(req.Header.Get("Authorization"))
		c.Operation = operation(c)
		r.mu.Lock()
		c.Tag = r.tag
		r.mu.Unlock()
		proxy.ServeHTTP(w, req.WithContext(contextWith(req, c)))
		r.mu.Lock()
		r.calls = append(r.calls, *c)
		r.mu.Unlock()
	})}
	go func() { _ = r.srv.Serve(l) }()
	return r, nil
}

// Close stops the proxy.
func (r *Recorder) Close() error { return r.srv.Close() }

// SetTag labels the calls recorded from now on (a command, a step).
func (r *Recorder) SetTag(tag string) {
	r.mu.Lock()
	r.tag = tag
	r.mu.Unlock()
}

// Calls returns what was recorded so far.
func (r *Recorder) Calls() []Call {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Call(nil), r.calls...)
}

// Reset forgets what was recorded.
func (r *Recorder) Reset() {
	r.mu.Lock()
	r.calls = nil
	r.mu.Unlock()
}

var scopeRe = regexp.MustCompile(`Credential=([^/,\s]+)/[0-9]{8}/[^/]+/([^/]+)/aws4_request`)

// credentialScope reads the access key and service from a SigV4
// Authorization header.
func credentialScope(auth string) (principal, service string) {
	if m := scopeRe.FindStringSubmatch(auth); m != nil {
		return m[1], m[2]
	}
	return "", ""
}

// operation names the API operation of a request.
func operation(c *Call) string {
	if t := c.Header.Get("X-Amz-Target"); t != "" { // JSON protocols: KMS, DynamoDB
		_, op, _ := strings.Cut(t, ".")
		return op
	}
	if c.Service == "s3" {
		return s3Operation(c)
	}
	// Query protocols (EC2, STS, IAM): Action in the form body or the URL.
	if v, err := url.ParseQuery(string(c.Body)); err == nil && v.Get("Action") != "" {
		return v.Get("Action")
	}
	if a := c.Query.Get("Action"); a != "" {
		return a
	}
	// REST-JSON services name the operation in neither; Budgets is JSON
	// with X-Amz-Target (handled above).
	return ""
}

// jsonBody decodes a JSON-protocol request or response body.
func jsonBody(b []byte) map[string]any {
	var m map[string]any
	_ = json.Unmarshal(b, &m)
	return m
}

type callKey struct{}
