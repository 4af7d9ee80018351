#!/usr/bin/env bash
# Benchmark of encrypting a raw disk file to a file, warm page cache: this
# tree's vhdcrypt against "today's" (built from BASE_REV, the commit before
# the raw input was read through a memory map), in one run, alternating
# which goes first. See bench/README.md ("raw.sh") for the goal.
#
#   bench/raw.sh                       # 2 GiB disk, 3 rounds
#   ROUNDS=5 SIZE_MIB=4096 bench/raw.sh
#
# Needs: go, git, sfdisk (fdisk), openssl, /usr/bin/time (GNU), sha256sum,
# ~3.5 x SIZE_MIB free under /tmp (or $BENCH_TMP). Everything it creates is
# removed at the end.
set -euo pipefail

SIZE_MIB=${SIZE_MIB:-2048}
ROUNDS=${ROUNDS:-3}
ZERO_EVERY=${ZERO_EVERY:-16}     # every 16th 2 MiB block zero
BASE_REV=${BASE_REV:-937587b}    # today's encryptor: two copies of the disk out of the page cache
MAX_CPU=${MAX_CPU:-0.7}          # goal: CPU time at most 0.7x today's
. "$(dirname "$0")/lib.sh"
bench_require go git sfdisk openssl /usr/bin/time sha256sum cmp
bench_workdir raw-bench $(( (SIZE_MIB * 7 / 2 + 512) * 1024 ))

echo "== setup in $W (cores: $(nproc))"
go build -o "$W/vhdcrypt" "$ROOT/examples/vhdcrypt"
baseline_build "$BASE_REV" "$W/vhdcrypt-base" examples/vhdcrypt
"$W/vhdcrypt" keygen -out "$W/key.bin" 2>/dev/null

random_disk "$W/src.raw" "$SIZE_MIB" "$ZERO_EVERY" $(( ZERO_EVERY - 1 )) raw-bench
echo 'start=2048, type=83, bootable' | sfdisk -q "$W/src.raw"
want=$(sha256sum < "$W/src.raw" | cut -d' ' -f1)
echo "disk: ${SIZE_MIB} MiB raw, every ${ZERO_EVERY}th 2 MiB block zero"

# encrypt NAME BINARY: encrypts the raw disk to a file, the input in the
# page cache and no dirty pages left from the step before.
encrypt() {
  rm -f "$W/out.$1.vhd"; sync
  cat "$W/src.raw" > /dev/null
  timed "$1" "$2" encrypt -q -in "$W/src.raw" -out "$W/out.$1.vhd" -key-file "$W/key.bin"
}

FAILED=0
base_cpu=() new_cpu=() base_t=() new_t=()
for (( round = 1; round <= ROUNDS; round++ )); do
  if (( round % 2 )); then
    encrypt base "$W/vhdcrypt-base"; encrypt new "$W/vhdcrypt"
  else
    encrypt new "$W/vhdcrypt"; encrypt base "$W/vhdcrypt-base"
  fi
  base_cpu+=("$CPU_base") new_cpu+=("$CPU_new") base_t+=("$T_base") new_t+=("$T_new")
  echo "round $round (load $(cut -d' ' -f1-3 /proc/loadavg)): today ${T_base}s wall ${CPU_base}s CPU ${RSS_base} KiB |" \
    "this tree ${T_new}s wall ${CPU_new}s CPU ${RSS_new} KiB | CPU ratio $(ratio "$CPU_new" "$CPU_base")"
done

mb=$(median "${base_cpu[@]}") mn=$(median "${new_cpu[@]}")
tb=$(median "${base_t[@]}") tn=$(median "${new_t[@]}")
echo "median of $ROUNDS rounds: today ${tb}s wall ${mb}s CPU, this tree ${tn}s wall ${mn}s CPU"
echo "ratios this tree / today: CPU $(ratio "$mn" "$mb"), wall $(ratio "$tn" "$tb")"

# Same bytes out: the two outputs differ only in the VHD's unique ID and
# time stamp (footer, its copy and the header); everything from the block
# table on, up to the final footer, must be identical, and the new output
# must decrypt to the source disk.
sb=$(stat -c %s "$W/out.base.vhd") sn=$(stat -c %s "$W/out.new.vhd")
if (( sb != sn )) || ! cmp -s <(tail -c +1537 "$W/out.base.vhd" | head -c -512) <(tail -c +1537 "$W/out.new.vhd" | head -c -512); then
  echo "FAIL: the two encryptions differ beyond their IDs and time stamps ($sb and $sn bytes)"
  FAILED=1
else
  echo "same bytes out: both $sn bytes, identical from the block table to the footer"
fi
got=$("$W/vhdcrypt" decrypt -q -in "$W/out.new.vhd" -out - -key-file "$W/key.bin" | sha256sum | cut -d' ' -f1)
if [[ "$got" != "$want" ]]; then
  echo "FAIL: this tree's output does not decrypt to the source disk"
  FAILED=1
fi
goal "raw CPU this tree / today" "$(ratio "$mn" "$mb")" "$MAX_CPU"
exit "$FAILED"
