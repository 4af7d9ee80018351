#!/usr/bin/env bash
# Benchmark of the image doctor on a 10 GiB sparse disk with a populated
# ext4 root, against debugfs (e2fsprogs) reading the same files in the
# same run. See bench/README.md ("doctor.sh") for the targets.
#
#   bench/doctor.sh                 # 10 GiB disk, 3 rounds
#   ROUNDS=5 DISK_GIB=50 bench/doctor.sh
#
# Needs: go, mkfs.ext4 and debugfs (e2fsprogs), sfdisk (fdisk), qemu-img
# (qemu-utils), /usr/bin/time (GNU). Everything it creates is removed at
# the end.
set -euo pipefail

DISK_GIB=${DISK_GIB:-10}
ROUNDS=${ROUNDS:-3}
FILES=${FILES:-20000}            # small files in the root, besides the system ones
MAX_SECONDS=${MAX_SECONDS:-1}    # target: one examination under 1 s
MAX_RSS_MIB=${MAX_RSS_MIB:-64}   # target: peak RSS under 64 MiB
. "$(dirname "$0")/lib.sh"
bench_require go mkfs.ext4 debugfs sfdisk qemu-img /usr/bin/time
bench_workdir doctor-bench

echo "== setup in $W (cores: $(nproc))"
SECONDS=0
go build -o "$W/doctor" "$ROOT/bench/cmd/doctor"

# The root tree: an Ubuntu 22.04 like system (the files the doctor reads)
# and FILES small files in 100 directories, a dpkg database of 3000
# packages and a Python dist-packages directory of 500 entries, so that
# directory lookups and the dpkg scan have real work to do.
T=$W/tree
K=5.15.0-91-generic
mkdir -p "$T"/{etc/cloud/cloud.cfg.d,usr/bin,usr/lib/modules/$K/kernel/drivers/block,boot,var/lib/dpkg,usr/lib/python3/dist-packages}
cat > "$T/usr/lib/os-release" <<'OS'
PRETTY_NAME="Ubuntu 22.04.4 LTS"
NAME="Ubuntu"
VERSION_ID="22.04"
ID=ubuntu
OS
ln -s ../usr/lib/os-release "$T/etc/os-release"
ln -s usr/lib "$T/lib"
ln -s usr/bin "$T/bin"
cp /usr/bin/env "$T/usr/bin/env"
echo 'datasource_list: [ ConfigDrive, None ]' > "$T/etc/cloud/cloud.cfg"
echo 'datasource_list: [ NoCloud, ConfigDrive, None ]' > "$T/etc/cloud/cloud.cfg.d/90_dpkg.cfg"
echo 'LABEL=cloudimg-rootfs / ext4 defaults 0 1' > "$T/etc/fstab"
echo "placeholder" > "$T/boot/vmlinuz-$K"
echo "placeholder" > "$T/usr/lib/modules/$K/kernel/drivers/block/xen-blkfront.ko"
printf 'kernel/fs/ext4/ext4.ko\n' > "$T/usr/lib/modules/$K/modules.builtin"
echo '#!/usr/bin/python3' > "$T/usr/bin/cloud-init"
{
  for i in $(seq 1 1500); do
    printf 'Package: pkg%04d\nStatus: install ok installed\nVersion: 1.%d-1\nDescription: filler package %d\n a longer description line for package %d\n\n' "$i" "$i" "$i" "$i"
  done
  printf 'Package: cloud-init\nStatus: install ok installed\nVersion: 23.4.4-0ubuntu0~22.04.1\nDescription: cloud instance initialisation\n\n'
  for i in $(seq 1501 3000); do
    printf 'Package: pkg%04d\nStatus: install ok installed\nVersion: 1.%d-1\nDescription: filler package %d\n a longer description line for package %d\n\n' "$i" "$i" "$i" "$i"
  done
} > "$T/var/lib/dpkg/status"
for i in $(seq 1 500); do mkdir -p "$T/usr/lib/python3/dist-packages/module_$i"; done
mkdir -p "$T/usr/lib/python3/dist-packages/cloud_init-23.4.4.egg-info"
printf 'Metadata-Version: 2.1\nName: cloud-init\nVersion: 23.4.4\n' > "$T/usr/lib/python3/dist-packages/cloud_init-23.4.4.egg-info/PKG-INFO"
per=$(( FILES / 100 ))
for d in $(seq 1 100); do
  mkdir -p "$T/usr/share/filler/d$d"
  for f in $(seq 1 "$per"); do printf 'file %d of directory %d\n' "$f" "$d" > "$T/usr/share/filler/d$d/f$f"; done
done
head -c $(( 64 << 20 )) /dev/urandom > "$T/usr/share/filler/blob.bin"

# The disk: an MBR with one Linux partition filling DISK_GIB, the ext4
# file system built from the tree (mkfs.ext4 -d), assembled sparse.
part_kib=$(( (DISK_GIB << 20) - 1024 ))
truncate -s "${DISK_GIB}G" "$W/disk.raw"
echo 'label: dos
start=2048, type=L, bootable' | sfdisk -q --no-reread --no-tell-kernel "$W/disk.raw"
mkfs.ext4 -q -F -L cloudimg-rootfs -E offset=1048576 -d "$T" "$W/disk.raw" "${part_kib}k"
qemu-img convert -c -O qcow2 "$W/disk.raw" "$W/disk.qcow2"
echo "setup took ${SECONDS}s"
echo "disk: $DISK_GIB GiB raw ($(du -m "$W/disk.raw" | cut -f1) MiB allocated), qcow2 $(du -m "$W/disk.qcow2" | cut -f1) MiB; root: $(find "$T" | wc -l) entries"

# The baseline: debugfs, e2fsprogs' own reader, opening the same file
# system and reading the same files the doctor reads.
cat > "$W/debugfs.cmds" <<CMDS
cat /usr/lib/os-release
cat /etc/fstab
cat /var/lib/dpkg/status
ls /usr/lib/python3/dist-packages
cat /etc/cloud/cloud.cfg
ls /etc/cloud/cloud.cfg.d
cat /etc/cloud/cloud.cfg.d/90_dpkg.cfg
ls /usr/lib/modules
stat /usr/lib/modules/$K/kernel/drivers/block/xen-blkfront.ko
ls /boot
CMDS

# One untimed pass of each, so that every timed one starts with the
# image's metadata in the page cache.
debugfs -f "$W/debugfs.cmds" "$W/disk.raw?offset=1048576" > /dev/null 2>"$W/debugfs.err" || { echo "doctor.sh: debugfs failed:"; cat "$W/debugfs.err"; exit 1; } >&2
"$W/doctor" "$W/disk.raw" > /dev/null
"$W/doctor" "$W/disk.qcow2" > /dev/null

fail=0
for r in $(seq 1 "$ROUNDS"); do
  timed base debugfs -f "$W/debugfs.cmds" "$W/disk.raw?offset=1048576"
  timed raw "$W/doctor" "$W/disk.raw"
  timed qcow "$W/doctor" "$W/disk.qcow2"
  printf 'round %d: debugfs %ss %d KiB | doctor raw %ss %d KiB (%.2fx debugfs) | doctor qcow2 %ss %d KiB\n' \
    "$r" "$T_base" "$RSS_base" "$T_raw" "$RSS_raw" "$(awk -v a="$T_raw" -v b="$T_base" 'BEGIN{print a/b}')" "$T_qcow" "$RSS_qcow"
  for v in raw qcow; do
    t=T_$v; m=RSS_$v
    if awk -v t="${!t}" -v max="$MAX_SECONDS" 'BEGIN{exit !(t > max)}'; then
      echo "  OVER: doctor $v took ${!t} s, target < $MAX_SECONDS s"; fail=1
    fi
    if (( ${!m} > MAX_RSS_MIB * 1024 )); then
      echo "  OVER: doctor $v peak RSS ${!m} KiB, target < $MAX_RSS_MIB MiB"; fail=1
    fi
  done
done
echo "== the doctor's report on the raw disk:"
cat "$W/out.raw"
grep -q 'result: the image meets every requirement checked' "$W/out.raw" || { echo "doctor.sh: the report is not all pass" >&2; fail=1; }
exit $fail
