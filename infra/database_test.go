package infra

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pulumi/pulumi/sdk/v3/go/common/resource"

	"microk8s-platform/infra/app"
	mt "microk8s-platform/infra/internal/mocktest"
	"microk8s-platform/service/dbroles"
)

// The database tier over its life (issue 15): restarts, password changes,
// least privilege and what destroy does to the data, as declared.

const dbAdminPass = "admin-s3cret-pass"

func container(t *testing.T, o kubeObject, name string) resource.PropertyMap {
	t.Helper()
	for _, c := range containers(o) {
		if mt.Str(c, "name") == name {
			return c
		}
	}
	t.Fatalf("%s %s has no container %q", o.Kind, o.Name, name)
	return nil
}

// arr is the array at path, or nothing when the field is absent.
func arr(pm resource.PropertyMap, path string) []resource.PropertyValue {
	if v := mt.Get(pm, path); v.IsArray() {
		return v.ArrayValue()
	}
	return nil
}

// secretKeysUsed are the keys of Secret app.SecretName a container reads
// through env; envFrom (all keys at once) is reported as "*".
func secretKeysUsed(c resource.PropertyMap) []string {
	var keys []string
	for _, e := range arr(c, "env") {
		if k := mt.Str(e.ObjectValue(), "valueFrom.secretKeyRef.key"); k != "" {
			keys = append(keys, k)
		}
	}
	if len(arr(c, "envFrom")) > 0 {
		keys = append(keys, "*")
	}
	slices.Sort(keys)
	return keys
}

func envValue(c resource.PropertyMap, name string) (string, bool) {
	for _, e := range arr(c, "env") {
		if mt.Str(e.ObjectValue(), "name") == name {
			return mt.Str(e.ObjectValue(), "value"), true
		}
	}
	return "", false
}

func withAdminPassword(t *testing.T, stack string) *mt.Mocks {
	t.Helper()
	c := mt.StackFile(t, stack)
	if stack == "local" {
		c = localStack(t) // with the sandbox's imageRepository (appimage_test.go)
	} else {
		c = userKeys(c)
	}
	m, _ := run(t, stack, c.Secret(map[string]string{"dbAdminPassword": dbAdminPass}))
	return m
}

// Each container gets only the Secret keys it uses: the service its
// DATABASE_URL, PostgreSQL the superuser's password (read once, at
// initialisation), the roles sidecar the two passwords as files. Before
// this, envFrom handed the service's DATABASE_URL to the database.
func TestDatabaseContainersGetOnlyTheirSecretKeys(t *testing.T) {
	for _, stack := range kubeStacks {
		for _, admin := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/admin=%v", stack, admin), func(t *testing.T) {
				var m *mt.Mocks
				if admin {
					m = withAdminPassword(t, stack)
				} else {
					m, _ = runStack(t, stack)
				}
				objs := kubeObjects(m)
				secret := find(t, objs, "Secret", app.Namespace, app.SecretName)
				var keys []string
				for k := range mt.Get(secret.Inputs, "stringData").ObjectValue() {
					keys = append(keys, string(k))
				}
				slices.Sort(keys)
				want := []string{app.KeyDatabaseURL, app.KeyAppPassword}
				if admin {
					want = append(want, app.KeyAdminPassword)
				}
				slices.Sort(want)
				if !slices.Equal(keys, want) {
					t.Errorf("Secret keys %v, want %v", keys, want)
				}

				api := find(t, objs, "Deployment", app.Namespace, app.ServiceName)
				if got := secretKeysUsed(container(t, api, "comments")); !slices.Equal(got, []string{app.KeyDatabaseURL}) {
					t.Errorf("the service reads Secret keys %v, want only %s", got, app.KeyDatabaseURL)
				}
				db := find(t, objs, "StatefulSet", app.Namespace, app.DatabaseService)
				pg := container(t, db, "postgres")
				wantPG := []string(nil)
				if admin {
					wantPG = []string{app.KeyAdminPassword}
				}
				if got := secretKeysUsed(pg); !slices.Equal(got, wantPG) {
					t.Errorf("postgres reads Secret keys %v, want %v", got, wantPG)
				}
				if _, ok := envValue(pg, "POSTGRES_PASSWORD_FILE"); ok == admin {
					t.Errorf("POSTGRES_PASSWORD_FILE set=%v with admin password=%v", ok, admin)
				}
				if got := secretKeysUsed(container(t, db, "roles")); len(got) != 0 {
					t.Errorf("the roles sidecar reads Secret keys %v through env; it reads files", got)
				}
				var files []string
				for _, v := range arr(db.Inputs, "spec.template.spec.volumes") {
					if mt.Str(v.ObjectValue(), "secret.secretName") == "" {
						continue
					}
					for _, it := range arr(v.ObjectValue(), "secret.items") {
						files = append(files, mt.Str(it.ObjectValue(), "key"))
					}
				}
				slices.Sort(files)
				wantFiles := []string{app.KeyAppPassword}
				if admin {
					wantFiles = []string{app.KeyAdminPassword, app.KeyAppPassword}
				}
				if !slices.Equal(files, wantFiles) {
					t.Errorf("the database pod mounts Secret keys %v, want %v (never DATABASE_URL)", files, wantFiles)
				}
				if admin && !mt.IsSecret(secret.Inputs, "stringData."+app.KeyAdminPassword) {
					t.Error("the admin password is not a Pulumi secret")
				}
			})
		}
	}
}

// The service connects as the application role, and the sidecar that makes
// that role (and applies password changes) runs exactly the script that
// service/dbroles tests against a real PostgreSQL.
func TestDatabaseRolesSidecarRunsTheTestedScript(t *testing.T) {
	m, _ := runStack(t, "dev")
	objs := kubeObjects(m)
	db := find(t, objs, "StatefulSet", app.Namespace, app.DatabaseService)
	roles := container(t, db, "roles")
	if cmd := mt.Strings(roles, "command"); len(cmd) != 3 || cmd[0] != "bash" || cmd[1] != "-c" || cmd[2] != dbroles.Script {
		t.Errorf("the roles sidecar does not run dbroles.Script verbatim")
	}
	for k, want := range map[string]string{"APP_ROLE": app.DatabaseUser, "APP_DATABASE": app.DatabaseName, "PGUSER": app.DatabaseAdmin, "PGHOST": "/var/run/postgresql"} {
		if got, _ := envValue(roles, k); got != want {
			t.Errorf("roles sidecar %s=%q, want %q", k, got, want)
		}
	}
	if app.DatabaseUser == app.DatabaseAdmin {
		t.Error("the service's role is the superuser")
	}
	secret := find(t, objs, "Secret", app.Namespace, app.SecretName)
	if u := mt.Str(secret.Inputs, "stringData.DATABASE_URL"); !strings.HasPrefix(u, "postgres://"+app.DatabaseUser+":") {
		t.Errorf("DATABASE_URL does not connect as %s", app.DatabaseUser)
	}
	if _, ok := envValue(container(t, db, "postgres"), "POSTGRES_USER"); ok {
		t.Error("POSTGRES_USER is set: the image would make that role the superuser")
	}
}

// PostgreSQL is a current 16 minor: docker-library/postgres (snapshot of
// 2026-02-26) 16/bookworm/Dockerfile has ENV PG_VERSION 16.13-1.pgdg12+1.
// 16.6 was seven releases behind.
func TestPostgresIsACurrent16Minor(t *testing.T) {
	m := regexp.MustCompile(`^postgres:16\.(\d+)-bookworm$`).FindStringSubmatch(app.PostgresImage)
	if m == nil {
		t.Fatalf("PostgresImage %q is not postgres:16.<minor>-bookworm", app.PostgresImage)
	}
	if minor, _ := strconv.Atoi(m[1]); minor < 13 {
		t.Errorf("PostgreSQL 16.%d; the image ships 16.13", minor)
	}
	ms, _ := runStack(t, "dev")
	db := find(t, kubeObjects(ms), "StatefulSet", app.Namespace, app.DatabaseService)
	for _, c := range containers(db) {
		if mt.Str(c, "image") != app.PostgresImage {
			t.Errorf("container %s runs %s", mt.Str(c, "name"), mt.Str(c, "image"))
		}
	}
}

func probeWindow(c resource.PropertyMap, probe string) time.Duration {
	period, _ := strconv.Atoi(mt.Str(c, probe+".periodSeconds"))
	failures, _ := strconv.Atoi(mt.Str(c, probe+".failureThreshold"))
	return time.Duration(period*failures) * time.Second
}

// PostgreSQL has a start-up probe long enough for crash recovery, and its
// liveness (does the postmaster answer at all) is not its readiness (does
// it accept connections): a long WAL replay is not killed in a loop.
func TestPostgresProbesSurviveCrashRecovery(t *testing.T) {
	m, _ := runStack(t, "dev")
	pg := container(t, find(t, kubeObjects(m), "StatefulSet", app.Namespace, app.DatabaseService), "postgres")
	if w := probeWindow(pg, "startupProbe"); w < 10*time.Minute {
		t.Errorf("start-up probe window %s; crash recovery gets at least 10 minutes", w)
	}
	live, ready := mt.Strings(pg, "livenessProbe.exec.command"), mt.Strings(pg, "readinessProbe.exec.command")
	if len(live) == 0 || slices.Equal(live, ready) {
		t.Errorf("liveness %v equals readiness %v", live, ready)
	}
	// pg_isready exits 1 while the server rejects connections (recovery):
	// liveness must accept that, readiness must not.
	if !strings.Contains(strings.Join(live, " "), "-le 1") || strings.Contains(strings.Join(ready, " "), "-le 1") {
		t.Errorf("liveness %v should accept pg_isready's 1, readiness %v should not", live, ready)
	}
}

// The service waits for its database (DATABASE_WAIT) inside its start-up
// probe's window, and that probe asks /readyz, so the window is real.
func TestServiceStartupProbeCoversTheDatabaseWait(t *testing.T) {
	m, _ := runStack(t, "dev")
	c := container(t, find(t, kubeObjects(m), "Deployment", app.Namespace, app.ServiceName), "comments")
	v, ok := envValue(c, "DATABASE_WAIT")
	wait, err := time.ParseDuration(v)
	if !ok || err != nil || wait < time.Minute {
		t.Fatalf("DATABASE_WAIT=%q", v)
	}
	if p := mt.Str(c, "startupProbe.httpGet.path"); p != "/readyz" {
		t.Errorf("start-up probe on %q; on /healthz it would pass before the database answers", p)
	}
	if w := probeWindow(c, "startupProbe"); w <= wait {
		t.Errorf("start-up window %s does not cover DATABASE_WAIT %s", w, wait)
	}
}

func credentialsAnnotation(t *testing.T, m *mt.Mocks) resource.PropertyValue {
	t.Helper()
	d := find(t, kubeObjects(m), "Deployment", app.Namespace, app.ServiceName)
	ann := mt.Get(d.Inputs, "spec.template.metadata.annotations")
	if ann.IsSecret() {
		ann = mt.Unsecret(ann)
	}
	if !ann.IsObject() {
		t.Fatalf("the service's pod template has no annotations")
	}
	return ann.ObjectValue()[resource.PropertyKey(app.CredentialsAnnotation)]
}

// A password change rolls the service's pods: its pod template carries a
// digest of the credentials. The digest is stable (no rollout on every up),
// differs per stack, is not an unsalted hash anyone could test guesses
// against, and stays a secret in the state.
func TestCredentialsDigestRollsTheServiceWithoutLeaking(t *testing.T) {
	local := func(pw string) *mt.Mocks {
		m, _ := run(t, "local", localStack(t).Secret(map[string]string{"dbPassword": pw}))
		return m
	}
	a, again, b := credentialsAnnotation(t, local(dbPass)), credentialsAnnotation(t, local(dbPass)), credentialsAnnotation(t, local("another-pass"))
	if !a.IsSecret() {
		t.Error("the digest is not a Pulumi secret in the state")
	}
	da, dAgain, db := mt.Unsecret(a).StringValue(), mt.Unsecret(again).StringValue(), mt.Unsecret(b).StringValue()
	if !strings.HasPrefix(da, "pbkdf2-sha256:") || da != dAgain {
		t.Errorf("digest %q then %q: want a stable pbkdf2-sha256 digest", da, dAgain)
	}
	if da == db {
		t.Error("changing dbPassword does not change the pod template: the pods keep the old DATABASE_URL")
	}
	dev := mt.Unsecret(credentialsAnnotation(t, withAdminPassword(t, "dev"))).StringValue()
	if dev == da {
		t.Error("the same password gives the same digest in two stacks: it is not salted per stack")
	}
	m := local(dbPass)
	url := mt.Str(find(t, kubeObjects(m), "Secret", app.Namespace, app.SecretName).Inputs, "stringData.DATABASE_URL")
	for _, plain := range []string{dbPass, url} {
		sum := sha256.Sum256([]byte(plain))
		if strings.Contains(da, dbPass) || strings.Contains(da, hex.EncodeToString(sum[:])) || strings.Contains(da, hex.EncodeToString(sum[:16])) {
			t.Errorf("the digest %q is the password or its plain sha256", da)
		}
	}
}

// What destroy does to the data, per stack: on a VM (dev, prod) the volume
// is the data disk's static one (datadisk_test.go), Retain, and prod's
// database resources are protected; without a data disk (local) the
// default class (Delete), and a Retain stack there (target ssh) gets a
// Retain class of MicroK8s' hostpath provisioner. Everywhere the claim
// outlives the StatefulSet, and a dbStorageGiB change (immutable
// volumeClaimTemplates) does not replace the StatefulSet.
func TestDatabaseDataLifetimePerStack(t *testing.T) {
	for _, stack := range kubeStacks {
		t.Run(stack, func(t *testing.T) {
			m, _ := runStack(t, stack)
			objs := kubeObjects(m)
			retain := mt.StackFile(t, stack).Values["microk8s-platform:dbReclaimPolicy"] == "Retain"
			if stack == "prod" && !retain {
				t.Fatal("prod does not keep its data (dbReclaimPolicy is not Retain)")
			}
			db := find(t, objs, "StatefulSet", app.Namespace, app.DatabaseService)
			class := mt.Str(db.Inputs, "spec.volumeClaimTemplates[0].spec.storageClassName")
			scs := ofKind(objs, "StorageClass")
			target := mt.StackFile(t, stack).Values["microk8s-platform:target"]
			if target == "aws" || target == "gcp" {
				pvs := ofKind(objs, "PersistentVolume")
				if len(scs) != 0 || class != app.DataClass || len(pvs) != 1 || mt.Str(pvs[0].Inputs, "spec.persistentVolumeReclaimPolicy") != "Retain" {
					t.Fatalf("on a data disk: %d classes, class %q, %d volumes", len(scs), class, len(pvs))
				}
				if db.Protect != retain || pvs[0].Protect != retain {
					t.Errorf("protect: StatefulSet %v, volume %v; want %v", db.Protect, pvs[0].Protect, retain)
				}
			} else if retain {
				if len(scs) != 1 || scs[0].Name != app.RetainStorageClass || class != app.RetainStorageClass {
					t.Fatalf("want StorageClass %s for the volume, got %d classes and %q", app.RetainStorageClass, len(scs), class)
				}
				sc := scs[0].Inputs
				if mt.Str(sc, "provisioner") != app.HostpathProvisioner || mt.Str(sc, "reclaimPolicy") != "Retain" || mt.Str(sc, "volumeBindingMode") != "WaitForFirstConsumer" {
					t.Errorf("StorageClass %v", sc)
				}
				if !db.Protect || !scs[0].Protect {
					t.Errorf("protect: StatefulSet %v, StorageClass %v", db.Protect, scs[0].Protect)
				}
			} else {
				if len(scs) != 0 || class != "" || db.Protect {
					t.Errorf("a Delete stack declares %d classes, class %q, protect %v", len(scs), class, db.Protect)
				}
			}
			if mt.Str(db.Inputs, "spec.persistentVolumeClaimRetentionPolicy.whenDeleted") != "Retain" || mt.Str(db.Inputs, "spec.persistentVolumeClaimRetentionPolicy.whenScaled") != "Retain" {
				t.Errorf("PVC retention %v", mt.Get(db.Inputs, "spec.persistentVolumeClaimRetentionPolicy"))
			}
			if !slices.Contains(db.IgnoreChanges, "spec.volumeClaimTemplates") {
				t.Errorf("ignoreChanges %v: a dbStorageGiB change would replace the StatefulSet", db.IgnoreChanges)
			}
		})
	}
}

// The database's PodDisruptionBudget never blocks a drain of its single
// node: with one replica, minAvailable 1 would refuse every eviction.
func TestDatabaseDisruptionBudgetLetsTheNodeDrain(t *testing.T) {
	for _, stack := range kubeStacks {
		t.Run(stack, func(t *testing.T) {
			m, _ := runStack(t, stack)
			objs := kubeObjects(m)
			db := find(t, objs, "StatefulSet", app.Namespace, app.DatabaseService)
			var found int
			for _, pdb := range ofKind(objs, "PodDisruptionBudget") {
				if !selects(mt.StringMap(pdb.Inputs, "spec.selector.matchLabels"), mt.StringMap(db.Inputs, "spec.template.metadata.labels")) {
					continue
				}
				found++
				if mt.Str(pdb.Inputs, "spec.maxUnavailable") != "1" || mt.Str(pdb.Inputs, "spec.minAvailable") != "" {
					t.Errorf("database PDB maxUnavailable=%q minAvailable=%q; want maxUnavailable 1", mt.Str(pdb.Inputs, "spec.maxUnavailable"), mt.Str(pdb.Inputs, "spec.minAvailable"))
				}
			}
			if found != 1 {
				t.Errorf("%d PodDisruptionBudgets select the database", found)
			}
		})
	}
}

func TestDatabaseReclaimPolicyIsValidated(t *testing.T) {
	for _, tc := range []struct {
		target, policy, want string
	}{
		{TargetAWS, "Keep", "want Delete"},
		{TargetKubeconfig, "Retain", "hostpath provisioner"},
	} {
		c := Defaults()
		c.Target, c.DBReclaimPolicy = tc.target, tc.policy
		err := c.Validate()
		if err == nil || !strings.Contains(err.Error(), "dbReclaimPolicy") || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("target %s dbReclaimPolicy %s: %v", tc.target, tc.policy, err)
		}
	}
	c := Defaults()
	c.Target, c.DBReclaimPolicy = TargetAWS, "Retain"
	if err := c.Validate(); err != nil && strings.Contains(err.Error(), "dbReclaimPolicy") {
		t.Errorf("Retain on aws refused: %v", err)
	}
}
