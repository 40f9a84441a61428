package workflows

// A small GitHub Actions job runner for the workflow tier: it runs a job's
// steps in order on this machine the way the runner does for what the
// workflows use, and nothing else:
//   - run: steps in `bash --noprofile --norc -eo pipefail` (GitHub's
//     default shell on Linux runners, docs "Workflow syntax", jobs.<id>.
//     steps[*].shell), with the workflow's, job's and step's env, and what
//     earlier steps wrote to GITHUB_ENV, GITHUB_PATH and GITHUB_OUTPUT;
//   - if: with the expression language's operators the workflows use
//     (==, !=, &&, ||, !, parentheses, string literals) and its status
//     functions: without one, success() is implied, and a failed step
//     skips every later step that does not ask for always() or failure()
//     (docs "Evaluate expressions", "Status check functions");
//   - uses: of the actions pinned here, replaced by what they do for the
//     steps after them: checkout and setup-go nothing (the checkout is
//     the test's copy, Go is this machine's), configure-aws-credentials
//     assumes the role (AssumeRoleWithWebIdentity evaluated against the
//     role's trust policy with the subject GitHub gives this job's token,
//     then the role's principal for every later step), pulumi/actions runs
//     the CLI command it is given.
// Anything else fails the test: the runner never guesses.

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// ghaRun is one run of one job.
type ghaRun struct {
	t        *testing.T
	w        workflow
	job      string
	dir      string            // the checkout
	inputs   map[string]string // workflow_dispatch inputs
	vars     map[string]string // repository and environment variables
	github   map[string]string // github context: event_name, repository, ref, run_id, ...
	baseEnv  []string          // the machine: PATH, HOME, emulator endpoints
	assume   func(role, subject string) ([]string, error)
	subject  string // this job's OIDC token subject
	files    string // GITHUB_ENV, GITHUB_PATH, GITHUB_OUTPUT, GITHUB_STEP_SUMMARY live here
	envAdded map[string]string
	outputs  map[string]map[string]string
	path     []string
	failed   bool
	results  []stepResult
}

type stepResult struct {
	name    string
	skipped bool
	code    int
	output  string
}

func (r *ghaRun) file(name string) string { return filepath.Join(r.files, name) }

// ctx resolves one context path (inputs.stack, steps.lock.outputs.held, ...).
func (r *ghaRun) ctx(path string, env map[string]string) string {
	parts := strings.Split(path, ".")
	switch parts[0] {
	case "inputs":
		return r.inputs[parts[1]]
	case "vars":
		return r.vars[parts[1]]
	case "env":
		return env[parts[1]]
	case "secrets":
		if parts[1] == "GITHUB_TOKEN" {
			return "ghs_test_token"
		}
		return ""
	case "github":
		return r.github[strings.Join(parts[1:], ".")]
	case "steps":
		if len(parts) == 4 && parts[2] == "outputs" {
			return r.outputs[parts[1]][parts[3]]
		}
	}
	r.t.Fatalf("expression: unknown context %q", path)
	return ""
}

var exprRe = regexp.MustCompile(`\$\{\{\s*(.*?)\s*\}\}`)

// subst replaces ${{ ... }} in s.
func (r *ghaRun) subst(s string, env map[string]string) string {
	return exprRe.ReplaceAllStringFunc(s, func(m string) string {
		return r.eval(exprRe.FindStringSubmatch(m)[1], env).str
	})
}

type value struct {
	str    string
	isBool bool
	b      bool
	status bool // the expression called a status function
}

func (v value) truthy() bool {
	if v.isBool {
		return v.b
	}
	return v.str != ""
}

// eval parses and evaluates an expression.
func (r *ghaRun) eval(expr string, env map[string]string) value {
	p := &exprParser{r: r, env: env, toks: tokenize(r.t, expr)}
	v := p.or()
	if p.pos != len(p.toks) {
		r.t.Fatalf("expression %q: unexpected %q", expr, p.toks[p.pos])
	}
	return v
}

var tokenRe = regexp.MustCompile(`\s*('(?:[^']|'')*'|&&|\|\||==|!=|!|\(|\)|[A-Za-z_][A-Za-z0-9_.-]*\(\)|[A-Za-z_][A-Za-z0-9_.-]*)`)

func tokenize(t *testing.T, s string) []string {
	var out []string
	for rest := s; strings.TrimSpace(rest) != ""; {
		m := tokenRe.FindStringSubmatchIndex(rest)
		if m == nil || m[0] != 0 {
			t.Fatalf("expression %q: cannot read %q", s, rest)
		}
		out = append(out, rest[m[2]:m[3]])
		rest = rest[m[1]:]
	}
	return out
}

type exprParser struct {
	r    *ghaRun
	env  map[string]string
	toks []string
	pos  int
}

func (p *exprParser) peek() string {
	if p.pos < len(p.toks) {
		return p.toks[p.pos]
	}
	return ""
}

func (p *exprParser) or() value {
	v := p.and()
	for p.peek() == "||" {
		p.pos++
		w := p.and()
		v = value{isBool: true, b: v.truthy() || w.truthy(), status: v.status || w.status}
	}
	return v
}

func (p *exprParser) and() value {
	v := p.cmp()
	for p.peek() == "&&" {
		p.pos++
		w := p.cmp()
		v = value{isBool: true, b: v.truthy() && w.truthy(), status: v.status || w.status}
	}
	return v
}

func (p *exprParser) cmp() value {
	v := p.unary()
	if op := p.peek(); op == "==" || op == "!=" {
		p.pos++
		w := p.unary()
		eq := v.str == w.str
		if v.isBool || w.isBool {
			eq = v.truthy() == w.truthy()
		}
		return value{isBool: true, b: eq == (op == "=="), status: v.status || w.status}
	}
	return v
}

func (p *exprParser) unary() value {
	switch tok := p.peek(); {
	case tok == "!":
		p.pos++
		v := p.unary()
		return value{isBool: true, b: !v.truthy(), status: v.status}
	case tok == "(":
		p.pos++
		v := p.or()
		if p.peek() != ")" {
			p.r.t.Fatalf("expression: missing )")
		}
		p.pos++
		return v
	case strings.HasPrefix(tok, "'"):
		p.pos++
		return value{str: strings.ReplaceAll(tok[1:len(tok)-1], "''", "'")}
	case tok == "true" || tok == "false":
		p.pos++
		return value{isBool: true, b: tok == "true"}
	case strings.HasSuffix(tok, "()"):
		p.pos++
		switch tok {
		case "always()":
			return value{isBool: true, b: true, status: true}
		case "success()":
			return value{isBool: true, b: !p.r.failed, status: true}
		case "failure()":
			return value{isBool: true, b: p.r.failed, status: true}
		case "cancelled()":
			return value{isBool: true, b: false, status: true}
		}
		p.r.t.Fatalf("expression: function %s is not known here", tok)
	case tok != "":
		p.pos++
		return value{str: p.r.ctx(tok, p.env)}
	}
	p.r.t.Fatalf("expression: unexpected end")
	return value{}
}

// readKV reads a GITHUB_ENV / GITHUB_OUTPUT file: NAME=value lines and
// NAME<<DELIMITER blocks.
func readKV(path string) map[string]string {
	out := map[string]string{}
	f, err := os.Open(path)
	if err != nil {
		return out
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if name, delim, ok := strings.Cut(line, "<<"); ok && !strings.Contains(name, "=") {
			var val []string
			for sc.Scan() && sc.Text() != delim {
				val = append(val, sc.Text())
			}
			out[name] = strings.Join(val, "\n")
			continue
		}
		if k, v, ok := strings.Cut(line, "="); ok {
			out[k] = v
		}
	}
	return out
}

// env is the environment of the next step: the machine's, the workflow's,
// the job's, GITHUB_ENV's, the actions', then the step's own.
func (r *ghaRun) env(s step) map[string]string {
	env := map[string]string{}
	for _, kv := range r.baseEnv {
		k, v, _ := strings.Cut(kv, "=")
		env[k] = v
	}
	for k, v := range map[string]string{
		"CI": "true", "GITHUB_ACTIONS": "true", "RUNNER_TEMP": r.file("tmp"),
		"GITHUB_ENV": r.file("env"), "GITHUB_PATH": r.file("path"), "GITHUB_STEP_SUMMARY": r.file("summary"),
		"GITHUB_REPOSITORY": r.github["repository"], "GITHUB_RUN_ID": r.github["run_id"], "GITHUB_SERVER_URL": r.github["server_url"],
		"GITHUB_EVENT_NAME": r.github["event_name"], "GITHUB_WORKSPACE": r.dir,
	} {
		env[k] = v
	}
	for _, m := range []map[string]string{r.w.Env, r.w.Jobs[r.job].Env} {
		for k, v := range m {
			env[k] = r.subst(v, env)
		}
	}
	for k, v := range readKV(r.file("env")) {
		env[k] = v
	}
	for k, v := range r.envAdded {
		env[k] = v
	}
	for k, v := range s.Env {
		env[k] = r.subst(v, env)
	}
	// GITHUB_PATH prepends, newest first.
	paths := append([]string(nil), r.path...)
	if b, err := os.ReadFile(r.file("path")); err == nil {
		for _, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
			if l != "" {
				paths = append([]string{l}, paths...)
			}
		}
	}
	env["PATH"] = strings.Join(append(paths, env["PATH"]), ":")
	return env
}

// run runs the job and returns its steps' results.
func (r *ghaRun) run() []stepResult {
	r.t.Helper()
	if err := os.MkdirAll(r.file("tmp"), 0o755); err != nil {
		r.t.Fatal(err)
	}
	r.outputs, r.envAdded = map[string]map[string]string{}, map[string]string{}
	for _, s := range r.w.Jobs[r.job].Steps {
		name := s.Name
		if name == "" {
			name = s.Uses
		}
		env := r.env(s)
		cond := "success()"
		if s.If != "" {
			cond = strings.TrimSuffix(strings.TrimPrefix(strings.TrimSpace(s.If), "${{"), "}}")
		}
		v := r.eval(cond, env)
		ok := v.truthy()
		if !v.status {
			ok = ok && !r.failed
		}
		if !ok {
			r.results = append(r.results, stepResult{name: name, skipped: true})
			continue
		}
		res := stepResult{name: name}
		switch {
		case s.Run != "":
			res.code, res.output = r.bash(r.subst(s.Run, env), env)
		case s.Uses != "":
			res.code, res.output = r.uses(s, env)
		}
		if s.ID != "" {
			r.outputs[s.ID] = readKV(r.file("output-" + s.ID))
		}
		if res.code != 0 {
			r.failed = true
		}
		r.results = append(r.results, res)
	}
	return r.results
}

func (r *ghaRun) bash(script string, env map[string]string) (int, string) {
	f := r.file(fmt.Sprintf("step-%d.sh", len(r.results)))
	if err := os.WriteFile(f, []byte(script), 0o644); err != nil {
		r.t.Fatal(err)
	}
	cmd := exec.Command("bash", "--noprofile", "--norc", "-eo", "pipefail", f)
	cmd.Dir = r.dir
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	// Each step writes its outputs to a file of its own.
	cmd.Env = append(cmd.Env, "GITHUB_OUTPUT="+r.file(fmt.Sprintf("output-%s", r.currentID())))
	out, err := cmd.CombinedOutput()
	code := 0
	if err != nil {
		code = 1
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		}
	}
	return code, string(out)
}

// currentID is the id of the step being run (or its index).
func (r *ghaRun) currentID() string {
	s := r.w.Jobs[r.job].Steps[len(r.results)]
	if s.ID != "" {
		return s.ID
	}
	return fmt.Sprint(len(r.results))
}

func (r *ghaRun) uses(s step, env map[string]string) (int, string) {
	with := map[string]string{}
	for k, v := range s.With {
		with[k] = r.subst(v, env)
	}
	action, _, _ := strings.Cut(s.Uses, "@")
	switch action {
	case "actions/checkout", "actions/setup-go":
		return 0, action + ": the test's checkout and this machine's Go"
	case "aws-actions/configure-aws-credentials":
		roleEnv, err := r.assume(with["role-to-assume"], r.subject)
		if err != nil {
			return 1, fmt.Sprintf("configure-aws-credentials: could not assume %s with subject %s: %v", with["role-to-assume"], r.subject, err)
		}
		for _, kv := range roleEnv {
			k, v, _ := strings.Cut(kv, "=")
			r.envAdded[k] = v
		}
		r.envAdded["AWS_REGION"], r.envAdded["AWS_DEFAULT_REGION"] = with["aws-region"], with["aws-region"]
		return 0, "assumed " + with["role-to-assume"]
	case "pulumi/actions":
		if with["command"] == "" {
			if with["pulumi-version"] == "" {
				return 1, "pulumi/actions: no pulumi-version"
			}
			return 0, "pulumi/actions: the CLI is on PATH (version " + with["pulumi-version"] + ")"
		}
		env["PULUMI_BACKEND_URL"] = with["cloud-url"]
		return r.bash(fmt.Sprintf("pulumi %s --stack %q --non-interactive", with["command"], with["stack-name"]), env)
	}
	r.t.Fatalf("the test runner does not know action %s", s.Uses)
	return 1, ""
}

// subjectFor is the subject GitHub gives the job's token: a job that names
// an environment gets environment:<name>, a pull_request run
// pull_request, anything else ref:<ref> (GitHub docs, "OpenID Connect
// reference", example subject claims), after the repository's prefix.
func (r *ghaRun) subjectFor(prefix string) string {
	j := r.w.Jobs[r.job]
	switch {
	case j.Environment != "":
		return prefix + ":environment:" + r.subst(j.Environment, nil)
	case r.github["event_name"] == "pull_request":
		return prefix + ":pull_request"
	}
	return prefix + ":ref:" + r.github["ref"]
}

// step returns the result of the step called name.
func (r *ghaRun) step(name string) stepResult {
	r.t.Helper()
	for _, res := range r.results {
		if res.name == name {
			return res
		}
	}
	r.t.Fatalf("no step %q ran or was skipped", name)
	return stepResult{}
}

func (r *ghaRun) String() string {
	var b strings.Builder
	for _, res := range r.results {
		switch {
		case res.skipped:
			fmt.Fprintf(&b, "--- %s: skipped\n", res.name)
		default:
			fmt.Fprintf(&b, "--- %s: exit %d\n%s", res.name, res.code, res.output)
		}
	}
	return b.String()
}
