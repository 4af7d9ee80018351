#!/usr/bin/env bash
# Benchmark of the template flow's data path against versitygw on loopback,
# in one run: an exported template's boot disk (a dynamic VHD object) turned
# into a new object by the same COS client in two ways:
#
#   copy     plain download + upload of the object (the baseline)
#   encrypt  COS-to-COS encryption, as e2e.Run does with Plan.SourceTemplate
#
# Neither writes the image to local disk. Goals (medians of ROUNDS
# alternating rounds): encrypt <= 1.1 x copy in wall time and <= 1.2 x its
# GET requests (counted by the client, retries included), peak RSS of every
# run <= 256 MiB (GNU time's "Maximum resident set size"). The arms take
# turns going first.
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
MAX_WALL=${MAX_WALL:-1.1}        # goal: encrypt at most 1.1x the copy's wall time
MAX_GETS=${MAX_GETS:-1.2}        # and at most 1.2x its GET requests
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

FAILED=0
peak=0
copy_t=() enc_t=() copy_g=() enc_g=()
for (( round = 1; round <= ROUNDS; round++ )); do
  echo
  echo "== round $round (load average: $(cut -d' ' -f1-3 /proc/loadavg))"
  # Alternate which goes first, so that neither always meets the state
  # (caches, server load) the other left.
  if (( round % 2 )); then arms=(copy encrypt); else arms=(encrypt copy); fi
  for arm in "${arms[@]}"; do
    settle
    if [[ $arm == copy ]]; then
      timed copy "$W/template" -mode copy -bucket bench -src export-0.vhd -dst copy.vhd
    else
      timed encrypt "$W/template" -mode encrypt -bucket bench -src export-0.vhd -dst encrypted.vhd -key "$W/key.bin"
    fi
  done
  for arm in copy encrypt; do
    grep -q 'verified=true' "$W/out.$arm" || { echo "$arm: upload not verified: $(cat "$W/out.$arm")"; FAILED=1; }
  done
  for rss in "$RSS_copy" "$RSS_encrypt"; do (( rss > peak )) && peak=$rss; done
  g_copy=$(sed -n 's/.* in \([0-9]*\) GETs.*/\1/p' "$W/out.copy")
  g_enc=$(sed -n 's/.* in \([0-9]*\) GETs.*/\1/p' "$W/out.encrypt")
  copy_t+=("$T_copy") enc_t+=("$T_encrypt") copy_g+=("$g_copy") enc_g+=("$g_enc")
  printf '%-40s %8s s %7s MB/s %6s CPU s %9s KiB RSS %6s GETs\n' \
    "download + upload (baseline)" "$T_copy" "$(rate "$src_bytes" "$T_copy")" "$CPU_copy" "$RSS_copy" "$g_copy" \
    "COS-to-COS encryption" "$T_encrypt" "$(rate "$src_bytes" "$T_encrypt")" "$CPU_encrypt" "$RSS_encrypt" "$g_enc"
  sed 's/^/  /' "$W/out.copy" "$W/out.encrypt"
  echo "this round: encrypt / copy = $(ratio "$T_encrypt" "$T_copy") wall, $(ratio "$g_enc" "$g_copy") GETs"
done

mc=$(median "${copy_t[@]}") me=$(median "${enc_t[@]}")
gc=$(median "${copy_g[@]}") ge=$(median "${enc_g[@]}")
echo
echo "== median of $ROUNDS rounds: copy ${mc}s ${gc} GETs, encrypt ${me}s ${ge} GETs; peak RSS $(( peak / 1024 )) MiB"
goal "COS-to-COS wall encrypt / copy" "$(ratio "$me" "$mc")" "$MAX_WALL"
goal "COS-to-COS GETs encrypt / copy" "$(ratio "$ge" "$gc")" "$MAX_GETS"
goal "COS-to-COS peak RSS MiB" "$(( peak / 1024 ))" 256
exit $FAILED
