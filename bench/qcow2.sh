#!/usr/bin/env bash
# Benchmark of vhdcrypt encrypting a qcow2 image against encrypting the same
# disk as a dynamic VHD, in one run, warm page cache. See bench/README.md
# ("qcow2.sh") for the target.
#
#   bench/qcow2.sh                     # 1.5 GiB disk, 3 rounds
#   ROUNDS=5 SIZE_MIB=2048 bench/qcow2.sh
#
# Needs: go, qemu-img, sfdisk (fdisk), openssl, /usr/bin/time (GNU),
# ~4.5 x SIZE_MIB free under /tmp (or $BENCH_TMP). Everything it creates is
# removed at the end.
set -euo pipefail

SIZE_MIB=${SIZE_MIB:-1536}       # the disk's virtual size
ROUNDS=${ROUNDS:-3}
ZERO_EVERY=${ZERO_EVERY:-8}      # every 8th 2 MiB block zero: 87.5% of blocks hold data
MAX_RATIO=${MAX_RATIO:-1.3}      # target: qcow2 at most 1.3x the dynamic VHD's time
. "$(dirname "$0")/lib.sh"
bench_require go qemu-img sfdisk openssl /usr/bin/time sha256sum
bench_workdir qcow2-bench $(( (SIZE_MIB * 9 / 2 + 512) * 1024 ))   # raw + VHD + qcow2, and slack

echo "== setup in $W (cores: $(nproc))"
go build -o "$W/vhdcrypt" "$ROOT/examples/vhdcrypt"
"$W/vhdcrypt" keygen -out "$W/key.bin" 2>/dev/null

# One populated raw disk: random data (an AES-CTR keystream, fast) with
# every ZERO_EVERY-th 2 MiB block zeroed, and an MBR with one Linux
# partition written over its first sector (the encryptor refuses a disk
# without a partition table). Both images are converted from it by
# qemu-img, which leaves the zero blocks unallocated in each.
blocks=$(( SIZE_MIB / 2 ))
random_disk "$W/src.raw" "$SIZE_MIB" "$ZERO_EVERY" $(( ZERO_EVERY - 1 )) qcow2-bench
echo 'start=2048, type=83, bootable' | sfdisk -q "$W/src.raw"
qemu-img convert -f raw -O vpc -o subformat=dynamic,force_size=on "$W/src.raw" "$W/src.vhd"
qemu-img convert -f raw -O qcow2 "$W/src.raw" "$W/src.qcow2"
want=$(sha256sum < "$W/src.raw" | cut -d' ' -f1)
rm "$W/src.raw"
echo "disk: ${SIZE_MIB} MiB, $blocks blocks of 2 MiB, $(( blocks - blocks / ZERO_EVERY )) hold data;" \
  "dynamic VHD $(( $(stat -c %s "$W/src.vhd") >> 20 )) MiB, qcow2 $(( $(stat -c %s "$W/src.qcow2") >> 20 )) MiB"

# encrypt NAME FILE: encrypts FILE to /dev/null (the encryptor's own cost,
# no output file) with FILE in the page cache; timed as in lib.sh.
encrypt() {
  cat "$2" > /dev/null
  timed "$1" sh -c '"$1" encrypt -q -in "$2" -out - -key-file "$3" > /dev/null' _ "$W/vhdcrypt" "$2" "$W/key.bin"
}

vhd_times=() qcow_times=() ratios=()
for (( round = 1; round <= ROUNDS; round++ )); do
  # Alternate which goes first, so that neither always meets a cache or
  # CPU state the other left.
  if (( round % 2 )); then
    encrypt vhd "$W/src.vhd"; encrypt qcow "$W/src.qcow2"
  else
    encrypt qcow "$W/src.qcow2"; encrypt vhd "$W/src.vhd"
  fi
  vhd_times+=("$T_vhd") qcow_times+=("$T_qcow") ratios+=("$(ratio "$T_qcow" "$T_vhd")")
  echo "round $round: dynamic VHD ${T_vhd}s ${RSS_vhd} KiB | qcow2 ${T_qcow}s ${RSS_qcow} KiB | qcow2/VHD $(ratio "$T_qcow" "$T_vhd")"
done

med_vhd=$(median "${vhd_times[@]}")
med_qcow=$(median "${qcow_times[@]}")
med_ratio=$(ratio "$med_qcow" "$med_vhd")
echo "median of $ROUNDS rounds: dynamic VHD ${med_vhd}s, qcow2 ${med_qcow}s, qcow2/VHD = $med_ratio (target <= $MAX_RATIO)"

# Both encryptions decrypt to the raw disk they were converted from.
status=0
for f in src.vhd src.qcow2; do
  got=$("$W/vhdcrypt" encrypt -q -in "$W/$f" -out - -key-file "$W/key.bin" \
    | "$W/vhdcrypt" decrypt -q -in - -out - -key-file "$W/key.bin" | sha256sum | cut -d' ' -f1)
  if [[ "$got" != "$want" ]]; then
    echo "FAIL: $f does not decrypt to the raw disk it was converted from"
    status=1
  fi
done
(( status == 0 )) && echo "both encrypted images decrypt to the source disk (sha256 $want)"

if awk -v r="$med_ratio" -v m="$MAX_RATIO" 'BEGIN { exit !(r > m) }'; then
  echo "FAIL: encrypting the qcow2 image takes ${med_ratio}x the dynamic VHD's time, more than ${MAX_RATIO}x"
  status=1
fi
exit "$status"
