#!/usr/bin/env bash
# Runs the whole suite N times in a row under the race detector while CPU
# hogs compete for the cores, and counts the runs that failed. Flaky tests
# (timing assumptions, sleeps used as synchronisation) show up here long
# before they show up in CI.
#
#   bash test/stress.sh [runs]          (default 10 runs, 1 hog)
#   STRESS_HOGS=2 bash test/stress.sh 3
#
# Each run's log is kept in STRESS_LOGS (default a new temporary directory);
# the last line is "stress: N runs, P passed, F failed" and the exit status
# is non-zero when a run failed.
set -u
runs=${1:-10}
hogs=${STRESS_HOGS:-1}
logs=${STRESS_LOGS:-$(mktemp -d "${TMPDIR:-/tmp}/e2eimage-stress-XXXXXX")}
mkdir -p "$logs"
cd "$(dirname "$0")/.."

pids=()
cleanup() { [ ${#pids[@]} -gt 0 ] && kill "${pids[@]}" 2>/dev/null; }
trap cleanup EXIT
for _ in $(seq "$hogs"); do
	yes >/dev/null &
	pids+=($!)
done

echo "stress: $runs runs of go test -race -count=1 ./... with $hogs CPU hog(s) on $(nproc) cores, commit $(git rev-parse --short HEAD 2>/dev/null || echo unknown), logs in $logs"
passed=0
failed=0
for i in $(seq "$runs"); do
	start=$(date +%s)
	log="$logs/run-$i.log"
	if CI=true go test -race -count=1 ./... >"$log" 2>&1; then
		passed=$((passed + 1))
		result=passed
	else
		failed=$((failed + 1))
		result=FAILED
	fi
	echo "run $i: $result in $(($(date +%s) - start)) s"
	if [ "$result" = FAILED ]; then
		grep -E '^(--- FAIL|FAIL|panic:)' "$log" | head -20 | sed 's/^/    /'
	fi
done
echo "stress: $runs runs, $passed passed, $failed failed"
[ "$failed" -eq 0 ]
