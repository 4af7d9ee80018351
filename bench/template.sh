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
ROOT=$(cd "$(dirname "$0")/.." && pwd)
TMPBASE=${BENCH_TMP:-/tmp}
export PATH="$PATH:$(go env GOPATH)/bin"

for tool in go versitygw qemu-img openssl /usr/bin/time curl; do
  command -v "$tool" >/dev/null || { echo "template.sh: $tool is required" >&2; exit 1; }
done

need_kib=$(( (SIZE_MIB * 5 + 1024) * 1024 ))   # source (raw, then VHD), server copy, two results + multipart staging
avail_kib=$(df -Pk "$TMPBASE" | awk 'NR==2 {print $4}')
if (( avail_kib < need_kib )); then
  echo "template.sh: need $((need_kib / 1024)) MiB free in $TMPBASE, have $((avail_kib / 1024)) MiB" >&2
  exit 1
fi

W=$(mktemp -d "$TMPBASE/e2e-template-bench.XXXXXX")
GW_PID=
cleanup() {
  if [ -n "$GW_PID" ]; then kill "$GW_PID" 2>/dev/null || true; wait "$GW_PID" 2>/dev/null || true; fi
  rm -rf "$W"
}
trap cleanup EXIT

echo "== setup in $W (cores: $(nproc))"
go build -o "$W/template" "$ROOT/bench/cmd/template"
go build -o "$W/upload" "$ROOT/bench/cmd/upload"

# The exported boot disk: random data with every ZERO_EVERY-th block zero,
# as a dynamic VHD (IBM documents exports as .vhd files without saying
# which kind; a dynamic VHD's block table spares the zero scan).
blocks=$(( SIZE_MIB / 2 ))
{ openssl enc -aes-128-ctr -nosalt -pass pass:e2e-template-bench -pbkdf2 -in /dev/zero 2>/dev/null || true; } \
  | head -c $(( SIZE_MIB * 1024 * 1024 )) > "$W/src.raw"
for (( b = 0; b < blocks; b += ZERO_EVERY )); do
  dd if=/dev/zero of="$W/src.raw" bs=2M seek="$b" count=1 conv=notrunc status=none
done
qemu-img convert -f raw -O vpc -o subformat=dynamic,force_size=on "$W/src.raw" "$W/src.vhd"
rm "$W/src.raw"
"$W/upload" -mode keygen -key "$W/key.bin"
src_bytes=$(stat -c %s "$W/src.vhd")
echo "exported boot disk: $(( src_bytes / 1024 / 1024 )) MiB dynamic VHD"

# versitygw on loopback; credentials are throw-away values for this run.
port=$(( 20000 + RANDOM % 20000 ))
export COS_ENDPOINT="http://127.0.0.1:$port" COS_REGION=us-south
export COS_ACCESS_KEY_ID="bench-$RANDOM" COS_SECRET_ACCESS_KEY="bench-secret-$RANDOM$RANDOM"
mkdir "$W/gw"
ROOT_ACCESS_KEY_ID=$COS_ACCESS_KEY_ID ROOT_SECRET_ACCESS_KEY=$COS_SECRET_ACCESS_KEY \
  versitygw --region us-south --port "127.0.0.1:$port" posix "$W/gw" > "$W/gw.log" 2>&1 &
GW_PID=$!
for _ in $(seq 100); do
  curl -s -o /dev/null "$COS_ENDPOINT/" && break
  sleep 0.1
done
curl -s -o /dev/null "$COS_ENDPOINT/" || { echo "versitygw did not start:"; cat "$W/gw.log"; exit 1; }
"$W/upload" -mode mkbucket -bucket bench
"$W/upload" -mode file -in "$W/src.vhd" -bucket bench -object export-0.vhd > /dev/null
rm "$W/src.vhd"   # from here on the image exists only in the object store

now() { date +%s%N; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", (b - a) / 1e9 }'; }
rate() { awk -v n="$1" -v s="$2" 'BEGIN { printf "%.0f", n / 1e6 / s }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }

# timed NAME CMD...: wall seconds in T_NAME, peak RSS (KiB) in RSS_NAME.
timed() {
  local name=$1; shift
  local t0 t1
  t0=$(now)
  /usr/bin/time -v -o "$W/time.$name" "$@" > "$W/out.$name"
  t1=$(now)
  printf -v "T_$name" '%s' "$(secs "$t0" "$t1")"
  printf -v "RSS_$name" '%s' "$(awk -F': ' '/Maximum resident set size/ {print $2}' "$W/time.$name")"
}
settle() { rm -f "$W/gw/bench/copy.vhd" "$W/gw/bench/encrypted.vhd"; sync; }

best() {
  local t="T_$1" b="BEST_$1"
  if [ -z "${!b:-}" ] || awk -v x="${!t}" -v y="${!b}" 'BEGIN { exit !(x < y) }'; then
    printf -v "$b" '%s' "${!t}"
  fi
}

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
