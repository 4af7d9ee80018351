#!/usr/bin/env bash
# Benchmark of the template flow's data path against versitygw on loopback,
# in one run: an exported template's boot disk (a dynamic VHD object) turned
# into a new object by the same COS client in two ways:
#
#   copy     plain download + upload of the object (the baseline)
#   encrypt  COS-to-COS encryption, as e2e.Run does with Plan.SourceTemplate
#
# Neither writes the image to local disk. Targets: encrypt <= 1.15 x copy,
# peak RSS of every run <= 256 MiB (GNU time's "Maximum resident set size").
# The arms run in turn in every round and the verdict uses each arm's best
# time over the rounds, which filters out the noise of a shared machine.
# versitygw runs on the same cores and costs more CPU per byte than the
# client, so the absolute rates say more about the machine than about the
# client.
#
#   bench/template.sh                       # 2 GiB image, 3 rounds
#   ROUNDS=1 SIZE_MIB=512 bench/template.sh
#
# Needs: go, versitygw (go install github.com/versity/versitygw/cmd/versitygw@v1.8.0),
# qemu-img, openssl, /usr/bin/time (GNU), curl, ~5 x SIZE_MIB free under /tmp
# (or $BENCH_TMP). Everything it creates is removed at the end.
set -euo pipefail

SIZE_MIB=${SIZE_MIB:-2048}
ROUNDS=${ROUNDS:-3}
ZERO_EVERY=${ZERO_EVERY:-16}     # every 16th 2 MiB block zero, as in upload.sh
. "$(dirname "$0")/lib.sh"
bench_require go versitygw qemu-img openssl /usr/bin/time curl
# source (raw, then VHD), server copy, two results + multipart staging
bench_workdir e2e-template-bench $(( (SIZE_MIB * 5 + 1024) * 1024 ))

echo "== setup in $W (cores: $(nproc))"
go build -o "$W/template" "$ROOT/bench/cmd/template"
go build -o "$W/upload" "$ROOT/bench/cmd/upload"

# The exported boot disk: random data with every ZERO_EVERY-th block zero,
# as a dynamic VHD (IBM documents exports as .vhd files without saying
# which kind; a dynamic VHD's block table spares the zero scan).
random_disk "$W/src.raw" "$SIZE_MIB" "$ZERO_EVERY" 0 e2e-template-bench
qemu-img convert -f raw -O vpc -o subformat=dynamic,force_size=on "$W/src.raw" "$W/src.vhd"
rm "$W/src.raw"
"$W/upload" -mode keygen -key "$W/key.bin"
src_bytes=$(stat -c %s "$W/src.vhd")
echo "exported boot disk: $(( src_bytes / 1024 / 1024 )) MiB dynamic VHD"

start_versitygw
"$W/upload" -mode mkbucket -bucket bench
"$W/upload" -mode file -in "$W/src.vhd" -bucket bench -object export-0.vhd > /dev/null
rm "$W/src.vhd"   # from here on the image exists only in the object store

settle() { rm -f "$W/gw/bench/copy.vhd" "$W/gw/bench/encrypted.vhd"; sync; }

fail=0
peak=0
for (( round = 1; round <= ROUNDS; round++ )); do
  echo
  echo "== round $round (load average: $(cut -d' ' -f1-3 /proc/loadavg))"
  settle
  timed copy "$W/template" -mode copy -bucket bench -src export-0.vhd -dst copy.vhd
  settle
  timed encrypt "$W/template" -mode encrypt -bucket bench -src export-0.vhd -dst encrypted.vhd -key "$W/key.bin"
  for arm in copy encrypt; do
    grep -q 'verified=true' "$W/out.$arm" || { echo "$arm: upload not verified: $(cat "$W/out.$arm")"; fail=1; }
    best "$arm"
  done
  for rss in "$RSS_copy" "$RSS_encrypt"; do (( rss > peak )) && peak=$rss; done
  printf '%-40s %8s s %7s MB/s %9s KiB RSS\n' \
    "download + upload (baseline)" "$T_copy" "$(rate "$src_bytes" "$T_copy")" "$RSS_copy" \
    "COS-to-COS encryption" "$T_encrypt" "$(rate "$src_bytes" "$T_encrypt")" "$RSS_encrypt"
  sed 's/^/  /' "$W/out.copy" "$W/out.encrypt"
  echo "this round: encrypt / copy = $(ratio "$T_encrypt" "$T_copy")"
done

r=$(ratio "$BEST_encrypt" "$BEST_copy")
echo
echo "== best of $ROUNDS: copy $BEST_copy s, encrypt $BEST_encrypt s"
echo "ratio: encrypt / copy = $r (target <= 1.15); peak RSS $(( peak / 1024 )) MiB (target <= 256 MiB)"
if awk -v a="$r" -v p="$peak" 'BEGIN { exit !(a <= 1.15 && p <= 256 * 1024) }'; then
  echo "targets: met"
else
  echo "targets: NOT met"; fail=1
fi
exit $fail
