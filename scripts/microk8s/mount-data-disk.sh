#!/usr/bin/env bash
# Mounts the platform's data disk (its own cloud disk, which outlives the
# VM) at MOUNT_POINT before MicroK8s is installed, so PostgreSQL's and
# Prometheus's static volumes live on it and a replaced VM finds them again.
#
#   1. Waits for DEVICE (a /dev/disk/by-id path: on AWS Nitro
#      nvme-Amazon_Elastic_Block_Store_vol<id>, the volume id being the
#      NVMe serial; on GCE google-<device name>) to appear.
#   2. A disk with data is never formatted. It is formatted (ext4) only when
#      it carries no signature at all: `blkid -p` finds nothing (exit 2)
#      and `wipefs -n` lists nothing (no partition table either). An
#      existing ext4 is kept as it is; anything else is refused, with what
#      was found, and nothing changes.
#   3. Mounts it by UUID with nofail (/etc/fstab), so a boot without the
#      disk still reaches SSH, and refuses a different filesystem already
#      mounted there.
#   4. Makes each data directory (DIRS: "name:uid:gid ..."), owned by the
#      user its image runs as: hostPath volumes ignore fsGroup.
#   5. Makes MicroK8s's containerd and kubelite wait for the mount
#      (systemd RequiresMountsFor=, drop-ins written before the snap exists;
#      unit names from canonical/microk8s 1.35 snap/snapcraft.yaml apps).
# Idempotent: a second run changes nothing.
#
# Without DEVICE (target ssh: an existing host, no disk of ours) the data
# lives in the host directory MOUNT_POINT (the stack's dataDir): steps 1-3
# are skipped, the directory is made if missing, and 4-5 run as above
# (RequiresMountsFor= then waits for whatever filesystem holds it). Backing
# it up is the host owner's job.
#
# env: DEVICE (optional), DISK_ID (the cloud's id of the disk, for the log),
#      MOUNT_POINT (default /var/lib/platform-data), DIRS,
#      DEVICE_TIMEOUT (default 300), FSTAB (default /etc/fstab),
#      SYSTEMD_DIR (default /etc/systemd/system)
set -euo pipefail
device="${DEVICE:-}"
mnt="${MOUNT_POINT:-/var/lib/platform-data}"
dirs="${DIRS:-}"
device_timeout="${DEVICE_TIMEOUT:-300}"
fstab="${FSTAB:-/etc/fstab}"
systemd_dir="${SYSTEMD_DIR:-/etc/systemd/system}"
label=platform-data

log() { echo "[mount-data-disk] $*"; }
die() { echo "[mount-data-disk] $*" >&2; exit 1; }

case "$mnt" in
  /*/*) ;;
  *) die "MOUNT_POINT '$mnt' must be an absolute path at least two levels deep" ;;
esac

if [ -z "$device" ]; then
  # No disk: a directory on the host (target ssh).
  if [ -e "$mnt" ] && [ ! -d "$mnt" ]; then
    die "$mnt exists and is not a directory: set dataDir to a directory for the platform's data"
  fi
  if [ ! -d "$mnt" ]; then
    log "no data disk: making the host directory $mnt for the platform's data (its backups are the host owner's job)"
    mkdir -p "$mnt"
  else
    log "no data disk: the platform's data lives in the host directory $mnt (its backups are the host owner's job)"
  fi
else

# 1. The device. A volume attached a moment ago may take a while to show.
waited=0
until [ -b "$device" ]; do
  [ "$waited" -ge "$device_timeout" ] && die "no block device at $device after ${device_timeout}s: is the data disk attached to this machine? (lsblk; ls -l /dev/disk/by-id)"
  [ "$waited" -eq 0 ] && log "waiting up to ${device_timeout}s for $device"
  sleep 2
  waited=$((waited + 2))
done
dev=$(readlink -f "$device")
log "data disk ${DISK_ID:-} at $device ($dev)"

# 2. Format only a blank disk.
rc=0
probe=$(blkid -p -o export "$dev" 2>&1) || rc=$?
fstype=$(sed -n 's/^TYPE=//p' <<<"$probe")
case "$rc" in
  0)
    if [ "$fstype" = ext4 ]; then
      log "$device ($dev) holds ext4: keeping it and its data"
    else
      found=$(grep -E '^(TYPE|PTTYPE|LABEL|UUID)=' <<<"$probe" | tr '\n' ' ')
      die "refusing to use $device ($dev): blkid finds ${found}but only ext4 is kept and only a blank disk is formatted. Attach the right disk, or wipe this one yourself (wipefs -a $dev) if its data is not needed"
    fi
    ;;
  2)
    signatures=$(wipefs -n "$dev")
    [ -z "$signatures" ] || die "refusing to format $device ($dev): blkid finds no filesystem, but wipefs lists signatures:
$signatures"
    log "$device ($dev) is blank: formatting it ext4 (label $label)"
    mkfs.ext4 -q -L "$label" "$dev"
    ;;
  *) die "blkid -p $dev failed (exit $rc): $probe" ;;
esac
uuid=$(blkid -p -o value -s UUID "$dev")
[ -n "$uuid" ] || die "the filesystem on $dev has no UUID"

# 3. Mounted by UUID, at boot too.
entry="UUID=$uuid $mnt ext4 defaults,nofail 0 2"
if ! grep -qxF "$entry" "$fstab" 2>/dev/null; then
  log "adding $mnt to $fstab"
  touch "$fstab"
  awk -v mnt="$mnt" '$2 != mnt' "$fstab" > "$fstab.new"
  echo "$entry" >> "$fstab.new"
  cat "$fstab.new" > "$fstab"
  rm -f "$fstab.new"
fi
mkdir -p "$mnt"
if mountpoint -q "$mnt"; then
  have=$(findmnt -n -o UUID --target "$mnt" || true)
  [ "$have" = "$uuid" ] || die "$mnt is already a mount of another filesystem (UUID ${have:-unknown}), not the data disk ($uuid); unmount it first"
  log "$mnt is mounted"
else
  log "mounting $dev at $mnt"
  mount -t ext4 -o defaults "$dev" "$mnt"
fi
fi

# 4. The data directories, owned by the images' users.
for spec in $dirs; do
  IFS=: read -r name uid gid <<<"$spec"
  if [ -z "$name" ] || [ -z "$uid" ] || [ -z "$gid" ]; then
    die "DIRS entry '$spec' is not name:uid:gid"
  fi
  d="$mnt/$name"
  if [ ! -d "$d" ]; then
    log "creating $d for $uid:$gid"
    mkdir -p "$d"
  fi
  [ "$(stat -c %u:%g "$d")" = "$uid:$gid" ] || { log "setting $d's owner to $uid:$gid"; chown "$uid:$gid" "$d"; }
  [ "$(stat -c %a "$d")" = 700 ] || chmod 700 "$d"
done

# 5. MicroK8s waits for the disk.
changed=false
for unit in snap.microk8s.daemon-containerd.service snap.microk8s.daemon-kubelite.service; do
  dropin="$systemd_dir/$unit.d/10-platform-data.conf"
  want="# Written by microk8s-platform (scripts/microk8s/mount-data-disk.sh).
[Unit]
RequiresMountsFor=$mnt"
  if [ "$(cat "$dropin" 2>/dev/null)" != "$want" ]; then
    log "making $unit wait for $mnt"
    mkdir -p "$(dirname "$dropin")"
    printf '%s\n' "$want" > "$dropin"
    changed=true
  fi
done
if [ "$changed" = true ] && [ -d /run/systemd/system ]; then
  systemctl daemon-reload
fi
log "data disk ready at $mnt"
