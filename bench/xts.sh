#!/usr/bin/env bash
# bench/xts.sh: AES-XTS throughput of package xts against OpenSSL and
# golang.org/x/crypto/xts, measured in one run on one core.
#
# It runs the xts package's BenchmarkEncrypt and BenchmarkDecrypt (our
# fastest path, our slower assembly kernels that this CPU also runs, our
# portable fallback, x/crypto/xts) and `openssl speed -evp aes-{128,256}-xts` with
# 512-byte and 64 KiB buffers, both single-threaded and pinned to the same
# CPU, then prints throughput in GB/s (10^9 bytes/s) and the ratios
# ours/OpenSSL and fallback/x-crypto. Each number is the median of COUNT
# runs.
#
# A 512-byte unit is one call per sector (ours, OpenSSL, x/crypto alike);
# a 64 KiB unit is one call per 128 sectors for ours and OpenSSL, and 128
# per-sector calls for x/crypto/xts, whose API is one sector per call.
#
# Timing: `openssl speed` divides by the process's user CPU time unless
# given -elapsed, so by default (TIMING=cpu) the Go side is measured the
# same way: the benchmarks report cpuMB/s, bytes per second of the
# benchmark thread's user CPU time (getrusage RUSAGE_THREAD, Linux). On a
# shared machine this is much steadier than wall-clock time, which counts
# the time other processes hold the core. TIMING=wall compares wall-clock
# throughput instead (Go's MB/s, openssl -elapsed).
#
# Environment: COUNT (default 3), BENCHTIME (Go, default 1s),
# OPENSSL_SECONDS (default 2), CPU (the core to pin to, default 0),
# TIMING (cpu or wall, default cpu). Needs go and openssl; taskset is used
# when present.
set -euo pipefail

cd "$(dirname "$0")/.."
COUNT=${COUNT:-3}
BENCHTIME=${BENCHTIME:-1s}
OPENSSL_SECONDS=${OPENSSL_SECONDS:-2}
CPU=${CPU:-0}
TIMING=${TIMING:-cpu}
case "$TIMING" in
cpu) go_metric=cpuMB/s ssl_timing=() ;;
wall) go_metric=MB/s ssl_timing=(-elapsed) ;;
*) echo "xts.sh: TIMING must be cpu or wall" >&2; exit 2 ;;
esac

command -v openssl >/dev/null || { echo "xts.sh: openssl not found" >&2; exit 1; }
pin=()
pinned="no (taskset not found)"
if command -v taskset >/dev/null; then
	pin=(taskset -c "$CPU")
	pinned="taskset -c $CPU"
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# Build first, so compiling does not share the measured core's time.
go test -c -o "$tmp/xts.test" ./xts

# Rounds alternate Go and OpenSSL so that load from other processes on a
# shared machine affects both sides alike.
for run in $(seq "$COUNT"); do
	echo "# round $run/$COUNT: Go benchmarks (GOMAXPROCS=1, $pinned, $BENCHTIME each)" >&2
	GOMAXPROCS=1 "${pin[@]}" "$tmp/xts.test" -test.run '^$' \
		-test.bench '^Benchmark(Encrypt|Decrypt)$' -test.benchtime "$BENCHTIME" \
		-test.benchmem >"$tmp/go.txt"
	# Lines: op impl key unit bytes_per_second
	awk -v metric="$go_metric" '/^Benchmark(Encrypt|Decrypt)\// {
		split($1, p, "/")          # BenchmarkEncrypt ours AES-256 512[-N]
		op = (p[1] == "BenchmarkEncrypt") ? "encrypt" : "decrypt"
		unit = p[4]; sub(/-[0-9]+$/, "", unit)
		for (i = 2; i < NF; i++) if ($(i+1) == metric) print op, p[2], p[3], unit, $i * 1e6
		if ($0 !~ / 0 allocs\/op/) print "xts.sh: allocation in " $1 > "/dev/stderr"
	}' "$tmp/go.txt" >>"$tmp/results.txt"

	echo "# round $run/$COUNT: $(openssl version | cut -d' ' -f1-2) speed ($pinned, ${OPENSSL_SECONDS}s each)" >&2
	for bits in 128 256; do
		for unit in 512 65536; do
			for op in encrypt decrypt; do
				flag=()
				[ "$op" = decrypt ] && flag=(-decrypt)
				bps=$("${pin[@]}" openssl speed -evp "aes-$bits-xts" "${flag[@]}" "${ssl_timing[@]}" \
					-bytes "$unit" -seconds "$OPENSSL_SECONDS" -mr 2>/dev/null |
					awk -F: '/^\+F:/ { print $4 }')
				[ -n "$bps" ] || { echo "xts.sh: no result from openssl speed" >&2; exit 1; }
				echo "$op openssl AES-$bits $unit $bps" >>"$tmp/results.txt"
			done
		done
	done
done

cpu=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo 2>/dev/null || true)
echo
echo "AES-XTS throughput, one core: GB/s (10^9 bytes/s) of $TIMING time, median of $COUNT rounds"
echo "CPU: ${cpu:-unknown}; $(go version | cut -d' ' -f3-); $(openssl version | cut -d' ' -f1-2); pinned: $pinned"
echo "ours: the fastest path on this CPU (avx512 > vaes > aesni > generic); vaes, aesni: our 256-bit"
echo "and 128-bit kernels, shown when this CPU runs them and they are not ours; generic: portable"
echo "fallback on crypto/aes; x/crypto: golang.org/x/crypto/xts"
echo
awk '
function median(key,    n, i, j, t, v) {
	n = split(vals[key], v, " ")
	if (n == 0) return 0
	for (i = 2; i <= n; i++) for (j = i; j > 1 && v[j-1] + 0 > v[j] + 0; j--) { t = v[j]; v[j] = v[j-1]; v[j-1] = t }
	return (n % 2) ? v[(n+1)/2] : (v[n/2] + v[n/2+1]) / 2
}
{ vals[$1 " " $2 " " $3 " " $4] = vals[$1 " " $2 " " $3 " " $4] " " $5; if ($2 == "vaes") haveVAES = 1; if ($2 == "aesni") haveAESNI = 1 }
END {
	printf "%-8s %-8s %6s | %7s", "op", "key", "unit", "ours"
	if (haveVAES) printf " %7s", "vaes"
	if (haveAESNI) printf " %7s", "aesni"
	printf " %8s %8s %8s | %12s %16s\n", "generic", "x/crypto", "openssl", "ours/openssl", "generic/x-crypto"
	split("encrypt decrypt", ops, " "); split("AES-128 AES-256", keys, " "); split("512 65536", units, " ")
	for (o = 1; o <= 2; o++) for (k = 1; k <= 2; k++) for (u = 1; u <= 2; u++) {
		base = ops[o] " %s " keys[k] " " units[u]
		ours = median(sprintf(base, "ours")); gen = median(sprintf(base, "generic"))
		xc = median(sprintf(base, "xcrypto")); ssl = median(sprintf(base, "openssl"))
		printf "%-8s %-8s %6s | %7.2f", ops[o], keys[k], units[u], ours / 1e9
		if (haveVAES) printf " %7.2f", median(sprintf(base, "vaes")) / 1e9
		if (haveAESNI) printf " %7.2f", median(sprintf(base, "aesni")) / 1e9
		printf " %8.2f %8.2f %8.2f | %12.2f %16.2f\n", gen / 1e9, xc / 1e9, ssl / 1e9, ssl ? ours / ssl : 0, xc ? gen / xc : 0
	}
}' "$tmp/results.txt"
