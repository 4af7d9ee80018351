#!/usr/bin/env bash
# Benchmark of vhdcrypt encrypt/decrypt against cp, in one run, warm page
# cache. See bench/README.md ("encrypt.sh") for the targets.
#
#   bench/encrypt.sh            # 2 GiB image, 2 rounds
#   ROUNDS=1 SIZE_MIB=1024 bench/encrypt.sh
#
# Needs: go, qemu-img, openssl, /usr/bin/time (GNU), ~10 GiB free under /tmp
# (or $BENCH_TMP). Everything it creates is removed at the end.
set -euo pipefail

SIZE_MIB=${SIZE_MIB:-2048}       # the dense image's virtual size
SPARSE_GIB=${SPARSE_GIB:-20}     # the sparse image's virtual size
ROUNDS=${ROUNDS:-2}
ZERO_EVERY=${ZERO_EVERY:-16}     # every 16th block zero: 93.75% of blocks hold data
ROOT=$(cd "$(dirname "$0")/.." && pwd)
TMPBASE=${BENCH_TMP:-/tmp}

for tool in go qemu-img openssl /usr/bin/time; do
  command -v "$tool" >/dev/null || { echo "encrypt.sh: $tool is required" >&2; exit 1; }
done

need_kib=$(( (SIZE_MIB * 5 + 1024) * 1024 ))   # raw + source + copy + encrypted + decrypted, and slack
avail_kib=$(df -Pk "$TMPBASE" | awk 'NR==2 {print $4}')
if (( avail_kib < need_kib )); then
  echo "encrypt.sh: need $((need_kib / 1024)) MiB free in $TMPBASE, have $((avail_kib / 1024)) MiB" >&2
  exit 1
fi

W=$(mktemp -d "$TMPBASE/e2e-bench.XXXXXX")
cleanup() { rm -rf "$W"; }
trap cleanup EXIT

echo "== setup in $W (cores: $(nproc), free: $((avail_kib / 1024)) MiB)"
go build -o "$W/vhdcrypt" "$ROOT/examples/vhdcrypt"

# The dense source: random data (AES-CTR keystream, fast) with every
# ZERO_EVERY-th 2 MiB block zeroed, converted to a dynamic VHD by qemu-img,
# which leaves the zero blocks unallocated.
blocks=$(( SIZE_MIB / 2 ))
# (openssl dies of SIGPIPE when head has enough: not an error.)
{ openssl enc -aes-128-ctr -nosalt -pass pass:e2e-bench -pbkdf2 -in /dev/zero 2>/dev/null || true; } \
  | head -c $(( SIZE_MIB * 1024 * 1024 )) > "$W/src.raw"
for (( b = 0; b < blocks; b += ZERO_EVERY )); do
  dd if=/dev/zero of="$W/src.raw" bs=2M seek="$b" count=1 conv=notrunc status=none
done
qemu-img convert -f raw -O vpc -o subformat=dynamic,force_size=on "$W/src.raw" "$W/src.vhd"
rm "$W/src.raw"

"$W/vhdcrypt" keygen -out "$W/key.bin" 2>/dev/null

src_bytes=$(stat -c %s "$W/src.vhd")
echo "source: $(( src_bytes / 1024 / 1024 )) MiB dynamic VHD, $blocks blocks of which $(( blocks - (blocks + ZERO_EVERY - 1) / ZERO_EVERY )) hold data"

# now_ns / elapsed helpers.
now() { date +%s%N; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", (b - a) / 1e9 }'; }
rate() { awk -v n="$1" -v s="$2" 'BEGIN { printf "%.0f", n / 1e6 / s }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }

# timed NAME CMD...: runs CMD under /usr/bin/time -v, records wall seconds in
# T_NAME and peak RSS (KiB) in RSS_NAME.
timed() {
  local name=$1; shift
  local t0 t1
  t0=$(now)
  /usr/bin/time -v -o "$W/time.$name" "$@"
  t1=$(now)
  printf -v "T_$name" '%s' "$(secs "$t0" "$t1")"
  printf -v "RSS_$name" '%s' "$(awk -F': ' '/Maximum resident set size/ {print $2}' "$W/time.$name")"
}

# warm FILES: page-cache the inputs and flush everyone's dirty pages, so that
# each timed step starts from the same writeback state (file outputs are
# otherwise timed against the previous step's leftovers).
warm() { cat "$@" > /dev/null; sync; }

# The sparse source: a SPARSE_GIB disk holding the dense one's data in its
# middle, to show that memory does not grow with the disk size.
truncate -s "${SPARSE_GIB}G" "$W/sparse.raw"
qemu-img convert -f vpc -O raw "$W/src.vhd" "$W/dense.raw"
dd if="$W/dense.raw" of="$W/sparse.raw" bs=4M seek=$(( SPARSE_GIB * 1024 / 4 / 2 )) conv=notrunc,sparse status=none
rm "$W/dense.raw"
qemu-img convert -f raw -O vpc -o subformat=dynamic,force_size=on "$W/sparse.raw" "$W/sparse.vhd"
rm "$W/sparse.raw"

for (( round = 1; round <= ROUNDS; round++ )); do
  echo
  echo "== round $round"
  warm "$W/src.vhd"
  timed cp cp "$W/src.vhd" "$W/copy.vhd"
  t0=$(now); sync "$W/copy.vhd"; t1=$(now)
  T_cpsync=$(awk -v a="$T_cp" -v b="$(secs "$t0" "$t1")" 'BEGIN { printf "%.3f", a + b }')
  rm "$W/copy.vhd"

  warm "$W/src.vhd"
  timed catpipe sh -c 'cat "$1" | cat > /dev/null' _ "$W/src.vhd"

  warm "$W/src.vhd"
  timed encfile "$W/vhdcrypt" encrypt -q -in "$W/src.vhd" -out "$W/enc.vhd" -key-file "$W/key.bin"
  enc_bytes=$(stat -c %s "$W/enc.vhd")

  warm "$W/src.vhd"
  timed encnull sh -c '"$1" encrypt -q -in "$2" -out - -key-file "$3" > /dev/null' _ "$W/vhdcrypt" "$W/src.vhd" "$W/key.bin"

  warm "$W/src.vhd"
  timed encpipe sh -c '"$1" encrypt -q -in "$2" -out - -key-file "$3" | cat > /dev/null' _ "$W/vhdcrypt" "$W/src.vhd" "$W/key.bin"

  warm "$W/enc.vhd"
  timed dec "$W/vhdcrypt" decrypt -q -in "$W/enc.vhd" -out "$W/dec.vhd" -format vhd -key-file "$W/key.bin"
  rm -f "$W/dec.vhd"

  warm "$W/enc.vhd"
  timed decnull sh -c '"$1" decrypt -q -in "$2" -out - -format vhd -key-file "$3" > /dev/null' _ "$W/vhdcrypt" "$W/enc.vhd" "$W/key.bin"
  rm -f "$W/enc.vhd"

  warm "$W/sparse.vhd"
  timed sparse sh -c '"$1" encrypt -q -in "$2" -out - -key-file "$3" > /dev/null' _ "$W/vhdcrypt" "$W/sparse.vhd" "$W/key.bin"

  printf '%-44s %8s s %7s MB/s %9s KiB RSS\n' \
    "cp (page cache, no fsync)" "$T_cp" "$(rate "$src_bytes" "$T_cp")" "$RSS_cp" \
    "cp + sync (what EncryptFile also does)" "$T_cpsync" "$(rate "$src_bytes" "$T_cpsync")" "-" \
    "cat | cat (the pipe's own ceiling)" "$T_catpipe" "$(rate "$src_bytes" "$T_catpipe")" "$RSS_catpipe" \
    "vhdcrypt encrypt -> file (fsync, rename)" "$T_encfile" "$(rate "$enc_bytes" "$T_encfile")" "$RSS_encfile" \
    "vhdcrypt encrypt -> stdout > /dev/null" "$T_encnull" "$(rate "$enc_bytes" "$T_encnull")" "$RSS_encnull" \
    "vhdcrypt encrypt -> stdout | cat (a pipe)" "$T_encpipe" "$(rate "$enc_bytes" "$T_encpipe")" "$RSS_encpipe" \
    "vhdcrypt decrypt -format vhd -> file" "$T_dec" "$(rate "$enc_bytes" "$T_dec")" "$RSS_dec" \
    "vhdcrypt decrypt -format vhd > /dev/null" "$T_decnull" "$(rate "$enc_bytes" "$T_decnull")" "$RSS_decnull" \
    "vhdcrypt encrypt ${SPARSE_GIB} GiB sparse > /dev/null" "$T_sparse" "-" "$RSS_sparse"
  echo "ratios: encrypt-to-file / (cp+sync) = $(ratio "$T_encfile" "$T_cpsync") (target <= 1.25);" \
    "encrypt-to-file / cp = $(ratio "$T_encfile" "$T_cp");" \
    "pipe throughput $(rate "$enc_bytes" "$T_encpipe") MB/s (target >= 2000 on 2 cores)"
  echo "peak RSS: $(( RSS_encfile / 1024 )) MiB for ${SIZE_MIB} MiB (target <= 128 MiB)," \
    "$(( RSS_sparse / 1024 )) MiB for ${SPARSE_GIB} GiB sparse (ratio $(ratio "$RSS_sparse" "$RSS_encnull"), target within 10%)"
done
