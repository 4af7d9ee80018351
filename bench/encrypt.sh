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
. "$(dirname "$0")/lib.sh"
bench_require go qemu-img openssl /usr/bin/time
# raw + source + copy + encrypted + decrypted, and slack
bench_workdir e2e-bench $(( (SIZE_MIB * 5 + 1024) * 1024 ))

echo "== setup in $W (cores: $(nproc), free: $((avail_kib / 1024)) MiB)"
go build -o "$W/vhdcrypt" "$ROOT/examples/vhdcrypt"

# The dense source: random data (AES-CTR keystream, fast) with every
# ZERO_EVERY-th 2 MiB block zeroed, converted to a dynamic VHD by qemu-img,
# which leaves the zero blocks unallocated.
blocks=$(( SIZE_MIB / 2 ))
random_disk "$W/src.raw" "$SIZE_MIB" "$ZERO_EVERY" 0 e2e-bench
qemu-img convert -f raw -O vpc -o subformat=dynamic,force_size=on "$W/src.raw" "$W/src.vhd"
rm "$W/src.raw"

"$W/vhdcrypt" keygen -out "$W/key.bin" 2>/dev/null

src_bytes=$(stat -c %s "$W/src.vhd")
echo "source: $(( src_bytes / 1024 / 1024 )) MiB dynamic VHD, $blocks blocks of which $(( blocks - (blocks + ZERO_EVERY - 1) / ZERO_EVERY )) hold data"

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
