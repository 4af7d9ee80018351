#!/usr/bin/env bash
# Benchmark of encrypting qcow2 images against qemu-img converting the same
# files to a dynamic VHD (which does no encryption), in one run, warm page
# cache: a zlib-compressed qcow2 (what qemu-img convert -c and many cloud
# images ship), a zstd-compressed one (reported, no goal) and an
# uncompressed one, of the same compressible disk. See bench/README.md
# ("qcow2peer.sh") for the goals.
#
#   bench/qcow2peer.sh                  # 512 MiB disk, 3 rounds
#   ROUNDS=5 SIZE_MIB=1024 bench/qcow2peer.sh
#
# Needs: go, qemu-img, sfdisk (fdisk), openssl, base64, /usr/bin/time (GNU),
# ~5 x SIZE_MIB free under /tmp (or $BENCH_TMP). Everything it creates is
# removed at the end.
set -euo pipefail

SIZE_MIB=${SIZE_MIB:-512}
ROUNDS=${ROUNDS:-3}
MAX_ZLIB=${MAX_ZLIB:-1.0}        # goal: zlib qcow2, ours / qemu-img, wall and CPU
MAX_PLAIN=${MAX_PLAIN:-1.1}      # goal: uncompressed qcow2, ours / qemu-img, wall and CPU
. "$(dirname "$0")/lib.sh"
bench_require go qemu-img sfdisk openssl base64 /usr/bin/time sha256sum
bench_workdir qcow2peer-bench $(( (SIZE_MIB * 5 + 512) * 1024 ))

echo "== setup in $W (cores: $(nproc))"
go build -o "$W/vhdcrypt" "$ROOT/examples/vhdcrypt"
"$W/vhdcrypt" keygen -out "$W/key.bin" 2>/dev/null

# A compressible disk: base64 text of a keystream (about 3:4 under
# deflate), an MBR over its first sector.
# (openssl and base64 die of SIGPIPE when head has enough: not an error.)
{ { openssl enc -aes-128-ctr -nosalt -pass pass:qcow2peer -pbkdf2 -in /dev/zero 2>/dev/null || true; } \
  | base64 -w 76 2>/dev/null || true; } | head -c $(( SIZE_MIB * 1024 * 1024 )) > "$W/src.raw"
echo 'start=2048, type=83, bootable' | sfdisk -q "$W/src.raw"
want=$(sha256sum < "$W/src.raw" | cut -d' ' -f1)
qemu-img convert -f raw -O qcow2 -c "$W/src.raw" "$W/zlib.qcow2"
qemu-img convert -f raw -O qcow2 -c -o compression_type=zstd "$W/src.raw" "$W/zstd.qcow2"
qemu-img convert -f raw -O qcow2 "$W/src.raw" "$W/plain.qcow2"
rm "$W/src.raw"
for f in zlib zstd plain; do
  echo "$f qcow2: $(( $(stat -c %s "$W/$f.qcow2") >> 20 )) MiB for a ${SIZE_MIB} MiB disk"
done

# ours NAME FILE / peer NAME FILE: the file in the page cache, no dirty
# pages left from the step before, the output written to a file in $W.
ours() {
  rm -f "$W/o.vhd"; sync; cat "$2" > /dev/null
  timed "$1" sh -c '"$1" encrypt -q -in "$2" -out - -key-file "$3" > "$4"' _ "$W/vhdcrypt" "$2" "$W/key.bin" "$W/o.vhd"
}
peer() {
  rm -f "$W/p.vhd"; sync; cat "$2" > /dev/null
  timed "$1" qemu-img convert -f qcow2 -O vpc -o subformat=dynamic "$2" "$W/p.vhd"
}

FAILED=0
declare -A TW TC
for (( round = 1; round <= ROUNDS; round++ )); do
  echo "== round $round (load average: $(cut -d' ' -f1-3 /proc/loadavg))"
  for f in zlib zstd plain; do
    if (( round % 2 )); then ours ours "$W/$f.qcow2"; peer peer "$W/$f.qcow2"
    else peer peer "$W/$f.qcow2"; ours ours "$W/$f.qcow2"; fi
    TW[$f.ours]+=" $T_ours" TC[$f.ours]+=" $CPU_ours" TW[$f.peer]+=" $T_peer" TC[$f.peer]+=" $CPU_peer"
    printf '  %-5s ours %7ss wall %6ss CPU %7s KiB | qemu-img %7ss wall %6ss CPU %7s KiB | ratio wall %s CPU %s\n' \
      "$f" "$T_ours" "$CPU_ours" "$RSS_ours" "$T_peer" "$CPU_peer" "$RSS_peer" \
      "$(ratio "$T_ours" "$T_peer")" "$(ratio "$CPU_ours" "$CPU_peer")"
  done
done

echo "== medians of $ROUNDS rounds"
for f in zlib zstd plain; do
  ow=$(median ${TW[$f.ours]}) oc=$(median ${TC[$f.ours]}) pw=$(median ${TW[$f.peer]}) pc=$(median ${TC[$f.peer]})
  echo "$f: ours ${ow}s wall ${oc}s CPU, qemu-img ${pw}s wall ${pc}s CPU: ours / qemu-img = $(ratio "$ow" "$pw") wall, $(ratio "$oc" "$pc") CPU"
  case $f in
    zlib) goal "zlib qcow2 wall" "$(ratio "$ow" "$pw")" "$MAX_ZLIB"; goal "zlib qcow2 CPU" "$(ratio "$oc" "$pc")" "$MAX_ZLIB" ;;
    plain) goal "uncompressed qcow2 wall" "$(ratio "$ow" "$pw")" "$MAX_PLAIN"; goal "uncompressed qcow2 CPU" "$(ratio "$oc" "$pc")" "$MAX_PLAIN" ;;
  esac
done

# Every encryption decrypts to the disk the images were made from.
for f in zlib zstd plain; do
  got=$("$W/vhdcrypt" encrypt -q -in "$W/$f.qcow2" -out - -key-file "$W/key.bin" \
    | "$W/vhdcrypt" decrypt -q -in - -out - -key-file "$W/key.bin" | sha256sum | cut -d' ' -f1)
  if [[ "$got" != "$want" ]]; then echo "FAIL: the $f qcow2's encryption does not decrypt to the source disk"; FAILED=1; fi
done
(( FAILED == 0 )) && echo "all three encryptions decrypt to the source disk (sha256 $want)"
exit "$FAILED"
