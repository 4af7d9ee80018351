#!/usr/bin/env bash
# fuzz.sh runs every fuzz target of the module, one after another, each for
# the same duration, and prints a table: target, executions, new corpus
# entries, failures. Fuzzers run one at a time with one worker each
# (-parallel=1) so that a shared machine stays usable.
#
# Usage: test/fuzz.sh [DURATION]          (default 10m, e.g. 2m, 30s)
#   FUZZ_TARGETS=REGEX   only targets whose "pkg.FuzzName" matches
#   FUZZ_PARALLEL=N      fuzz workers per target (default 1)
#   FUZZ_SAVE=1          copy the new corpus entries the fuzzers found from
#                        the Go cache into each package's testdata/fuzz, so
#                        that plain `go test` (and CI) runs them as seeds
#   FUZZ_LOG_DIR=DIR     where each target's output goes (default: a temp dir)
#   FUZZ_MINIMIZE=D      time spent minimizing each new input (default 5s; Go's
#                        default, 60s, can eat most of a short run for targets
#                        whose executions take milliseconds)
#
# Each target also prints a parseable line for test/harden.sh:
#   HARDEN fuzz target=<pkg>.<Fuzz> seconds=S execs=N new=K failures=F
# The exit status is 1 if any target failed (its failing input is in the
# package's testdata/fuzz/<Fuzz>/, written there by go test).
set -euo pipefail

dur=${1:-10m}
par=${FUZZ_PARALLEL:-1}
minimize=${FUZZ_MINIMIZE:-5s}
filter=${FUZZ_TARGETS:-.}
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
logdir=${FUZZ_LOG_DIR:-$(mktemp -d "${TMPDIR:-/tmp}/e2eimage-fuzz.XXXXXX")}
mkdir -p "$logdir"
module=$(go list -m)
cache=$(go env GOCACHE)/fuzz

# Every "func FuzzX(f *testing.F)" in a _test.go file, as "dir FuzzX".
targets=$(grep -Rl --include='*_test.go' -E '^func Fuzz[A-Za-z0-9_]*\(f \*testing\.F\)' . |
	grep -v '^./\.git/' | sort | while read -r file; do
		dir=$(dirname "$file")
		grep -oE '^func Fuzz[A-Za-z0-9_]*' "$file" | sed 's/^func //' | while read -r name; do
			echo "${dir#./} $name"
		done
	done | sort -u)

printf '%-44s %10s %12s %6s %9s\n' TARGET SECONDS EXECS NEW FAILURES
failed=0
total_execs=0
n=0
while read -r dir name; do
	[ -n "$dir" ] || continue
	id="${dir}.${name}"
	echo "$id" | grep -Eq -- "$filter" || continue
	n=$((n + 1))
	log="$logdir/$(echo "$id" | tr '/' '_').log"
	start=$(date +%s)
	status=0
	go test -run='^$' -fuzz="^${name}\$" -fuzztime="$dur" -fuzzminimizetime="$minimize" -parallel="$par" "./$dir" >"$log" 2>&1 || status=$?
	secs=$(($(date +%s) - start))
	last=$(grep -E '^fuzz: elapsed:' "$log" | tail -1 || true)
	execs=$(echo "$last" | sed -nE 's/.*execs: ([0-9]+).*/\1/p')
	new=$(echo "$last" | sed -nE 's/.*new interesting: ([0-9]+).*/\1/p')
	execs=${execs:-0}
	new=${new:-0}
	fails=0
	if [ "$status" -ne 0 ]; then
		fails=1
		failed=1
	fi
	total_execs=$((total_execs + execs))
	printf '%-44s %10s %12s %6s %9s\n' "$id" "$secs" "$execs" "$new" "$fails"
	echo "HARDEN fuzz target=$id seconds=$secs execs=$execs new=$new failures=$fails" >>"$logdir/summary.txt"
	if [ "$fails" -ne 0 ]; then
		grep -E 'Failing input written to|--- FAIL|panic:' "$log" | head -5 | sed 's/^/    /'
	fi
	if [ "${FUZZ_SAVE:-}" = 1 ]; then
		src="$cache/$module/$dir/$name"
		dst="$dir/testdata/fuzz/$name"
		if [ -d "$src" ]; then
			mkdir -p "$dst"
			for f in "$src"/*; do
				[ -e "$dst/$(basename "$f")" ] || cp "$f" "$dst/"
			done
		fi
	fi
done <<<"$targets"

echo "targets=$n total_execs=$total_execs duration_each=$dur logs=$logdir"
cat "$logdir/summary.txt" 2>/dev/null || true
exit "$failed"
