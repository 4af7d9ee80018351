# lib.sh: what the benchmark scripts share. Sourced, never run:
#
#   . "$(dirname "$0")/lib.sh"
#
# It sets ROOT (the repository) and TMPBASE (BENCH_TMP or /tmp), and puts
# $(go env GOPATH)/bin on PATH. bench_workdir makes the work directory W and
# removes it (and stops versitygw) on exit.

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
TMPBASE=${BENCH_TMP:-/tmp}
BENCH_NAME=$(basename "$0")
export PATH="$PATH:$(go env GOPATH)/bin"

bench_die() { echo "$BENCH_NAME: $*" >&2; exit 1; }

# bench_require TOOL...: every tool is on PATH, or the script stops naming it.
bench_require() {
  local tool
  for tool in "$@"; do
    command -v "$tool" >/dev/null || bench_die "$tool is required"
  done
}

# bench_workdir PREFIX [NEED_KIB]: checks that TMPBASE has NEED_KIB free
# (avail_kib holds what it has), then makes W and the exit trap.
bench_workdir() {
  local prefix=$1 need=${2:-0}
  avail_kib=$(df -Pk "$TMPBASE" | awk 'NR==2 {print $4}')
  if (( avail_kib < need )); then
    bench_die "need $((need / 1024)) MiB free in $TMPBASE, have $((avail_kib / 1024)) MiB"
  fi
  W=$(mktemp -d "$TMPBASE/$prefix.XXXXXX")
  GW_PID=
  trap bench_cleanup EXIT
}

bench_cleanup() {
  if [ -n "${GW_PID:-}" ]; then kill "$GW_PID" 2>/dev/null || true; wait "$GW_PID" 2>/dev/null || true; fi
  rm -rf "$W"
}

# random_disk FILE SIZE_MIB ZERO_EVERY FIRST PASS: FILE becomes SIZE_MIB of
# random data (an AES-CTR keystream keyed by PASS: fast and repeatable) in
# which 2 MiB blocks FIRST, FIRST+ZERO_EVERY, ... are zero.
random_disk() {
  local file=$1 size=$2 every=$3 first=$4 pass=$5 b
  # (openssl dies of SIGPIPE when head has enough: not an error.)
  { openssl enc -aes-128-ctr -nosalt -pass "pass:$pass" -pbkdf2 -in /dev/zero 2>/dev/null || true; } \
    | head -c $(( size * 1024 * 1024 )) > "$file"
  for (( b = first; b < size / 2; b += every )); do
    dd if=/dev/zero of="$file" bs=2M seek="$b" count=1 conv=notrunc status=none
  done
}

# start_versitygw: an S3 server on loopback serving $W/gw, with throw-away
# credentials exported as COS_ENDPOINT, COS_REGION, COS_ACCESS_KEY_ID and
# COS_SECRET_ACCESS_KEY; bench_cleanup stops it.
start_versitygw() {
  local port=$(( 20000 + RANDOM % 20000 ))
  export COS_ENDPOINT="http://127.0.0.1:$port" COS_REGION=us-south
  export COS_ACCESS_KEY_ID="bench-$RANDOM" COS_SECRET_ACCESS_KEY="bench-secret-$RANDOM$RANDOM"
  mkdir "$W/gw"
  ROOT_ACCESS_KEY_ID=$COS_ACCESS_KEY_ID ROOT_SECRET_ACCESS_KEY=$COS_SECRET_ACCESS_KEY \
    versitygw --region us-south --port "127.0.0.1:$port" posix "$W/gw" > "$W/gw.log" 2>&1 &
  GW_PID=$!
  local _
  for _ in $(seq 100); do
    curl -s -o /dev/null "$COS_ENDPOINT/" && return 0
    sleep 0.1
  done
  echo "versitygw did not start:" >&2
  cat "$W/gw.log" >&2
  exit 1
}

now() { date +%s%N; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", (b - a) / 1e9 }'; }
rate() { awk -v n="$1" -v s="$2" 'BEGIN { printf "%.0f", n / 1e6 / s }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }
median() { printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { printf "%s", (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

# timed NAME CMD...: runs CMD under GNU time, wall seconds in T_NAME, CPU
# seconds (user + system, CMD and its children) in CPU_NAME, peak RSS (KiB)
# in RSS_NAME; CMD's output in $W/out.NAME and $W/err.NAME (shown when CMD
# fails, which stops the script).
timed() {
  local name=$1 t0 t1
  shift
  t0=$(now)
  if ! /usr/bin/time -v -o "$W/time.$name" "$@" > "$W/out.$name" 2> "$W/err.$name"; then
    echo "$BENCH_NAME: $name failed: $*" >&2
    cat "$W/err.$name" >&2
    exit 1
  fi
  t1=$(now)
  printf -v "T_$name" '%s' "$(secs "$t0" "$t1")"
  printf -v "RSS_$name" '%s' "$(awk -F': ' '/Maximum resident set size/ {print $2}' "$W/time.$name")"
  printf -v "CPU_$name" '%s' "$(awk -F': ' '/User time|System time/ {s += $2} END {printf "%.2f", s}' "$W/time.$name")"
}

# goal NAME VALUE MAX: prints whether VALUE (a ratio) is within MAX, and
# sets FAILED=1 when it is not.
goal() {
  if awk -v v="$2" -v m="$3" 'BEGIN { exit !(v <= m) }'; then
    echo "goal $1: $2 <= $3: met"
  else
    echo "goal $1: $2 > $3: NOT met"
    FAILED=1
  fi
}

# baseline_build REV OUT PKG: builds package PKG of the repository as of
# commit REV into OUT (from a git archive of it in $W, removed afterwards),
# so that a script can measure "today's" binary against the working tree's
# in the same run.
baseline_build() {
  local rev=$1 out=$2 pkg=$3 dir="$W/baseline-src"
  mkdir -p "$dir"
  git -C "$ROOT" archive "$rev" | tar -x -C "$dir"
  (cd "$dir" && go build -o "$out" "./$pkg")
  rm -rf "$dir"
}

# best NAME: keeps the smallest T_NAME seen so far in BEST_NAME.
best() {
  local t="T_$1" b="BEST_$1"
  if [ -z "${!b:-}" ] || awk -v x="${!t}" -v y="${!b}" 'BEGIN { exit !(x < y) }'; then
    printf -v "$b" '%s' "${!t}"
  fi
}
