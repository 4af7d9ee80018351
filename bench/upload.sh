#!/usr/bin/env bash
# Benchmark of encrypt+upload paths against versitygw on loopback, in one run:
#
#   plain    upload of an already encrypted VHD file (the baseline)
#   stream   encrypt the image while uploading it: no temporary file
#   twostep  encrypt to a file, then upload that file
#
# Targets: stream <= 1.15 x plain, stream <= 0.7 x twostep, peak RSS of every
# arm <= 256 MiB (GNU time's "Maximum resident set size"). The arms run in
# turn in every round and the verdict uses each arm's best time over the
# rounds, which filters out the noise of a shared machine. versitygw runs on
# the same cores and costs more CPU per byte than the client, so the absolute
# rates say more about the machine than about the client.
#
#   bench/upload.sh                       # 2 GiB image, 3 rounds
#   ROUNDS=1 SIZE_MIB=512 bench/upload.sh
#
# Needs: go, versitygw (go install github.com/versity/versitygw/cmd/versitygw@v1.8.0),
# qemu-img, openssl, /usr/bin/time (GNU), ~4 x SIZE_MIB free under /tmp (or
# $BENCH_TMP). Everything it creates is removed at the end.
set -euo pipefail

SIZE_MIB=${SIZE_MIB:-2048}
ROUNDS=${ROUNDS:-3}
ZERO_EVERY=${ZERO_EVERY:-16}     # every 16th 2 MiB block zero, as in encrypt.sh
. "$(dirname "$0")/lib.sh"
bench_require go versitygw qemu-img openssl /usr/bin/time curl
# source, encrypted copy x2, server copy + multipart staging
bench_workdir e2e-upload-bench $(( (SIZE_MIB * 5 + 1024) * 1024 ))

echo "== setup in $W (cores: $(nproc))"
go build -o "$W/upload" "$ROOT/bench/cmd/upload"

# The source: random data with every ZERO_EVERY-th block zero, as a dynamic VHD.
random_disk "$W/src.raw" "$SIZE_MIB" "$ZERO_EVERY" 0 e2e-upload-bench
qemu-img convert -f raw -O vpc -o subformat=dynamic,force_size=on "$W/src.raw" "$W/src.vhd"
rm "$W/src.raw"
"$W/upload" -mode keygen -key "$W/key.bin"
"$W/upload" -mode encrypt -in "$W/src.vhd" -out "$W/enc.vhd" -key "$W/key.bin"
enc_bytes=$(stat -c %s "$W/enc.vhd")
echo "image: $(( $(stat -c %s "$W/src.vhd") / 1024 / 1024 )) MiB dynamic VHD, encrypted $(( enc_bytes / 1024 / 1024 )) MiB"

start_versitygw
"$W/upload" -mode mkbucket -bucket bench

warm() { cat "$@" > /dev/null; }
settle() { rm -f "$W/gw/bench/"*.vhd; sync; }

fail=0
peak=0
for (( round = 1; round <= ROUNDS; round++ )); do
  echo
  echo "== round $round (load average: $(cut -d' ' -f1-3 /proc/loadavg))"
  settle; warm "$W/enc.vhd"
  timed plain "$W/upload" -mode file -in "$W/enc.vhd" -bucket bench -object plain.vhd

  settle; warm "$W/src.vhd"
  timed stream "$W/upload" -mode stream -in "$W/src.vhd" -key "$W/key.bin" -bucket bench -object stream.vhd

  settle; warm "$W/src.vhd"; rm -f "$W/enc2.vhd"
  timed twostep "$W/upload" -mode twostep -in "$W/src.vhd" -out "$W/enc2.vhd" -key "$W/key.bin" -bucket bench -object twostep.vhd
  rm -f "$W/enc2.vhd"

  for arm in plain stream twostep; do
    grep -q 'verified=true' "$W/out.$arm" || { echo "$arm: upload not verified: $(cat "$W/out.$arm")"; fail=1; }
    best "$arm"
  done
  for rss in "$RSS_plain" "$RSS_stream" "$RSS_twostep"; do (( rss > peak )) && peak=$rss; done
  printf '%-46s %8s s %7s MB/s %9s KiB RSS\n' \
    "upload encrypted file (baseline)" "$T_plain" "$(rate "$enc_bytes" "$T_plain")" "$RSS_plain" \
    "encrypt while uploading (stream)" "$T_stream" "$(rate "$enc_bytes" "$T_stream")" "$RSS_stream" \
    "encrypt to file, then upload it (two-step)" "$T_twostep" "$(rate "$enc_bytes" "$T_twostep")" "$RSS_twostep"
  echo "this round: stream / plain = $(ratio "$T_stream" "$T_plain"), stream / two-step = $(ratio "$T_stream" "$T_twostep")"
done

r1=$(ratio "$BEST_stream" "$BEST_plain"); r2=$(ratio "$BEST_stream" "$BEST_twostep")
echo
echo "== best of $ROUNDS: plain $BEST_plain s, stream $BEST_stream s, two-step $BEST_twostep s"
echo "ratios: stream / plain = $r1 (target <= 1.15); stream / two-step = $r2 (target <= 0.70);" \
  "peak RSS $(( peak / 1024 )) MiB (target <= 256 MiB)"
if awk -v a="$r1" -v b="$r2" -v p="$peak" 'BEGIN { exit !(a <= 1.15 && b <= 0.70 && p <= 256 * 1024) }'; then
  echo "targets: met"
else
  echo "targets: NOT met"; fail=1
fi
exit $fail
