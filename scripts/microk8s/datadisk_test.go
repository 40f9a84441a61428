package microk8s

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// mount-data-disk.sh runs here for real, as root, on loop devices: real
// blkid, wipefs, mkfs.ext4 and mount. What it must never do is format a
// disk that holds anything; these tests hold it to that.

// disk is a loop device over a sparse file, detached (and unmounted) at
// the end of the test.
type disk struct {
	t    *testing.T
	dev  string
	root string // the test's fstab, systemd dir and mount point live here
}

func newDisk(t *testing.T) *disk {
	t.Helper()
	return newDiskFrom(t, "", 64<<20)
}

// newDiskFrom is a loop device over a copy of image (a snapshot of another
// disk), or over a blank sparse file of size bytes when image is "".
func newDiskFrom(t *testing.T, image string, size int64) *disk {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root for loop devices and mount (CI runs as root)")
	}
	root := t.TempDir()
	img := filepath.Join(root, "disk.img")
	if image == "" {
		must(t, os.WriteFile(img, nil, 0o600))
		must(t, os.Truncate(img, size))
	} else if out, err := exec.Command("cp", "--sparse=always", image, img).CombinedOutput(); err != nil {
		t.Fatalf("cp: %v\n%s", err, out)
	}
	out, err := exec.Command("losetup", "--find", "--show", img).CombinedOutput()
	if err != nil {
		t.Fatalf("losetup: %v\n%s", err, out)
	}
	d := &disk{t: t, dev: strings.TrimSpace(string(out)), root: root}
	t.Cleanup(func() {
		_ = exec.Command("umount", d.mnt()).Run()
		_ = exec.Command("losetup", "-d", d.dev).Run()
	})
	return d
}

func (d *disk) mnt() string { return filepath.Join(d.root, "data") }

func (d *disk) env(extra ...string) []string {
	return append(append(os.Environ(),
		"DEVICE="+d.dev, "MOUNT_POINT="+d.mnt(), "FSTAB="+filepath.Join(d.root, "fstab"),
		"SYSTEMD_DIR="+filepath.Join(d.root, "systemd"), "DIRS=postgres:999:999 prometheus:1000:2000",
		"DEVICE_TIMEOUT=2"), extra...)
}

func (d *disk) run(extra ...string) (string, error) {
	cmd := exec.Command("bash", "mount-data-disk.sh")
	cmd.Env = d.env(extra...)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func (d *disk) mustRun() string {
	d.t.Helper()
	out, err := d.run()
	if err != nil {
		d.t.Fatalf("mount-data-disk.sh: %v\n%s", err, out)
	}
	return out
}

func (d *disk) probe(tag string) string {
	out, _ := exec.Command("blkid", "-p", "-o", "value", "-s", tag, d.dev).Output()
	return strings.TrimSpace(string(out))
}

func (d *disk) mounted() bool { return exec.Command("mountpoint", "-q", d.mnt()).Run() == nil }

func (d *disk) umount() {
	d.t.Helper()
	if out, err := exec.Command("umount", d.mnt()).CombinedOutput(); err != nil {
		d.t.Fatalf("umount: %v\n%s", err, out)
	}
}

// snapshot is every file the script writes outside the disk.
func (d *disk) snapshot() string {
	var b strings.Builder
	for _, f := range []string{"fstab", "systemd/snap.microk8s.daemon-containerd.service.d/10-platform-data.conf", "systemd/snap.microk8s.daemon-kubelite.service.d/10-platform-data.conf"} {
		c, _ := os.ReadFile(filepath.Join(d.root, f))
		b.WriteString(f + ":\n" + string(c))
	}
	return b.String()
}

func owner(t *testing.T, path string) string {
	t.Helper()
	out, err := exec.Command("stat", "-c", "%u:%g %a", path).Output()
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(out))
}

// A blank disk is formatted once and mounted by UUID with nofail; the
// directories belong to the images' users; MicroK8s waits for the mount.
// A second run changes nothing. A new machine (the disk unmounted and
// mounted again by the script) finds the same filesystem, files intact.
func TestBlankDiskIsFormattedOnceAndKeptAfterwards(t *testing.T) {
	d := newDisk(t)
	out := d.mustRun()
	if !strings.Contains(out, "is blank: formatting it ext4") || d.probe("TYPE") != "ext4" || !d.mounted() {
		t.Fatalf("blank disk not formatted and mounted:\n%s", out)
	}
	uuid := d.probe("UUID")
	fstab, _ := os.ReadFile(filepath.Join(d.root, "fstab"))
	if want := "UUID=" + uuid + " " + d.mnt() + " ext4 defaults,nofail 0 2\n"; string(fstab) != want {
		t.Errorf("fstab = %q, want %q", fstab, want)
	}
	for dir, want := range map[string]string{"postgres": "999:999 700", "prometheus": "1000:2000 700"} {
		if got := owner(t, filepath.Join(d.mnt(), dir)); got != want {
			t.Errorf("%s: %s, want %s", dir, got, want)
		}
	}
	if s := d.snapshot(); strings.Count(s, "RequiresMountsFor="+d.mnt()+"\n") != 2 {
		t.Errorf("drop-ins:\n%s", s)
	}
	row := filepath.Join(d.mnt(), "postgres", "PG_VERSION")
	must(t, os.WriteFile(row, []byte("16\n"), 0o600))

	before := d.snapshot()
	again := d.mustRun()
	for _, change := range []string{"formatting", "adding", "creating", "setting", "making", "mounting"} {
		if strings.Contains(again, change) {
			t.Errorf("second run did %q:\n%s", change, again)
		}
	}
	if d.snapshot() != before || d.probe("UUID") != uuid {
		t.Error("second run changed the host's files or the filesystem")
	}

	d.umount() // the old VM is gone; a new one runs the step
	out = d.mustRun()
	if !strings.Contains(out, "holds ext4: keeping it") || strings.Contains(out, "formatting") {
		t.Errorf("existing ext4 not kept:\n%s", out)
	}
	if b, err := os.ReadFile(row); err != nil || string(b) != "16\n" || d.probe("UUID") != uuid {
		t.Errorf("data lost on remount: %q %v", b, err)
	}
}

// Anything but ext4 or a blank disk is refused, and nothing changes: not
// the disk, not fstab, no mount.
func TestDiskWithAnythingElseIsRefused(t *testing.T) {
	for name, mark := range map[string]func(d *disk){
		"swap": func(d *disk) {
			if out, err := exec.Command("mkswap", d.dev).CombinedOutput(); err != nil {
				t.Fatalf("mkswap: %v\n%s", err, out)
			}
		},
		// An MBR with one partition and no filesystem: blkid -p exits 0
		// with PTTYPE=dos and no TYPE.
		"partition table": func(d *disk) {
			f, err := os.OpenFile(d.dev, os.O_WRONLY, 0)
			must(t, err)
			defer f.Close()
			_, err = f.WriteAt([]byte{0, 0, 2, 0, 0x83, 0, 0, 0, 0, 8, 0, 0, 0, 0xf8, 1, 0}, 446)
			must(t, err)
			_, err = f.WriteAt([]byte{0x55, 0xaa}, 510)
			must(t, err)
		},
	} {
		t.Run(name, func(t *testing.T) {
			d := newDisk(t)
			mark(d)
			typ, pt := d.probe("TYPE"), d.probe("PTTYPE")
			out, err := d.run()
			if err == nil || !strings.Contains(out, "refusing") {
				t.Fatalf("not refused (%v):\n%s", err, out)
			}
			if d.probe("TYPE") != typ || d.probe("PTTYPE") != pt || d.mounted() {
				t.Error("the refused disk was changed or mounted")
			}
			if _, err := os.Stat(filepath.Join(d.root, "fstab")); err == nil {
				t.Error("fstab written for a refused disk")
			}
		})
	}
}

// No disk at the path: a bounded wait, then a message saying what to check.
func TestMissingDiskFailsWithAMessage(t *testing.T) {
	cmd := exec.Command("bash", "mount-data-disk.sh")
	cmd.Env = append(os.Environ(), "DEVICE=/dev/disk/by-id/nvme-Amazon_Elastic_Block_Store_vol0000", "DEVICE_TIMEOUT=0", "MOUNT_POINT="+t.TempDir())
	out, err := cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(out), "is the data disk attached") {
		t.Errorf("missing disk: %v\n%s", err, out)
	}
}

// Target ssh has no disk of ours: without DEVICE the data lives in the
// host directory MOUNT_POINT (the stack's dataDir). It is made with the
// images' owners, MicroK8s waits for whatever filesystem holds it, nothing
// is formatted or mounted and fstab is left alone; data already there is
// kept, and a second run changes nothing. Not a directory, or a relative
// path, is refused.
func TestHostDirectoryWithoutADisk(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to set the directories' owners (CI runs as root)")
	}
	root := t.TempDir()
	dir := filepath.Join(root, "srv", "platform-data")
	fstab := filepath.Join(root, "fstab")
	must(t, os.WriteFile(fstab, []byte("# the host's own\n"), 0o644))
	run := func(mountPoint string) (string, error) {
		cmd := exec.Command("bash", "mount-data-disk.sh")
		cmd.Env = append(os.Environ(), "DEVICE=", "MOUNT_POINT="+mountPoint, "FSTAB="+fstab,
			"SYSTEMD_DIR="+filepath.Join(root, "systemd"), "DIRS=postgres:999:999 prometheus:1000:2000")
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	out, err := run(dir)
	if err != nil || !strings.Contains(out, "making the host directory "+dir) || !strings.Contains(out, "backups are the host owner's job") {
		t.Fatalf("first run: %v\n%s", err, out)
	}
	for sub, want := range map[string]string{"postgres": "999:999 700", "prometheus": "1000:2000 700"} {
		if got := owner(t, filepath.Join(dir, sub)); got != want {
			t.Errorf("%s: %s, want %s", sub, got, want)
		}
	}
	if b, _ := os.ReadFile(fstab); string(b) != "# the host's own\n" {
		t.Errorf("fstab changed: %q", b)
	}
	dropin, _ := os.ReadFile(filepath.Join(root, "systemd/snap.microk8s.daemon-kubelite.service.d/10-platform-data.conf"))
	if !strings.Contains(string(dropin), "RequiresMountsFor="+dir+"\n") {
		t.Errorf("kubelite's drop-in: %q", dropin)
	}
	must(t, os.WriteFile(filepath.Join(dir, "postgres", "PG_VERSION"), []byte("16\n"), 0o600))
	out, err = run(dir)
	if err != nil || strings.Contains(out, "making") || strings.Contains(out, "setting") || strings.Contains(out, "creating") {
		t.Errorf("second run changed something: %v\n%s", err, out)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "postgres", "PG_VERSION")); string(b) != "16\n" {
		t.Errorf("data lost: %q", b)
	}
	file := filepath.Join(root, "srv", "a-file")
	must(t, os.WriteFile(file, nil, 0o644))
	for mp, want := range map[string]string{file: "is not a directory", "data": "absolute path", "/data": "absolute path"} {
		if out, err := run(mp); err == nil || !strings.Contains(out, want) {
			t.Errorf("MOUNT_POINT=%s: %v\n%s", mp, err, out)
		}
	}
}

// The drop-ins that make MicroK8s wait for the data parse in systemd
// itself: systemd-analyze verify loads each unit with its drop-in and
// names any key or value it ignores. A broken drop-in (a relative path)
// is reported, so this check can fail.
func TestDropInsParseInSystemd(t *testing.T) {
	analyze, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Fatal("systemd-analyze is not installed (make deps)")
	}
	root := t.TempDir()
	units := filepath.Join(root, "systemd")
	cmd := exec.Command("bash", "mount-data-disk.sh")
	cmd.Env = append(os.Environ(), "DEVICE=", "MOUNT_POINT="+filepath.Join(root, "srv", "data"), "SYSTEMD_DIR="+units, "DIRS=")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("mount-data-disk.sh: %v\n%s", err, out)
	}
	verify := func(unit string) string {
		must(t, os.WriteFile(filepath.Join(units, unit), []byte("[Unit]\nDescription=stand-in for MicroK8s's "+unit+"\n[Service]\nExecStart=/bin/true\n"), 0o644))
		c := exec.Command(analyze, "verify", "--man=no", filepath.Join(units, unit))
		c.Env = append(os.Environ(), "SYSTEMD_UNIT_PATH="+units+":")
		out, _ := c.CombinedOutput()
		return string(out)
	}
	for _, unit := range []string{"snap.microk8s.daemon-containerd.service", "snap.microk8s.daemon-kubelite.service"} {
		if out := verify(unit); strings.Contains(out, "10-platform-data.conf") {
			t.Errorf("%s: systemd ignores part of our drop-in:\n%s", unit, out)
		}
	}
	broken := filepath.Join(units, "snap.microk8s.daemon-kubelite.service.d", "10-platform-data.conf")
	must(t, os.WriteFile(broken, []byte("[Unit]\nRequiresMountsFor=srv/data\n"), 0o644))
	if out := verify("snap.microk8s.daemon-kubelite.service"); !strings.Contains(out, "10-platform-data.conf") {
		t.Errorf("systemd-analyze did not report a broken drop-in:\n%s", out)
	}
}
