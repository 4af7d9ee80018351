#!/usr/bin/env bash
# harden.sh runs the whole hardening suite with its long loops and prints a
# summary: parsers fuzzed (executions), hostile inputs tried, faults
# injected, kills survived, power cuts simulated, secrets found in outputs
# (must be 0), and the suggestions the tests made about code they do not
# own.
#
# Usage: test/harden.sh [FUZZTIME]      (per fuzz target; default 1m; 0 skips fuzzing)
#   HARDEN_LONG is set to "1" for the tests: 5 fault seeds, 10 kill cycles.
#   HARDEN_KILLS=N overrides the number of kill cycles.
#   HARDEN_RACE set to "1" runs the Go tests with the race detector.
#   FUZZ_TARGETS, FUZZ_PARALLEL, FUZZ_SAVE: see test/fuzz.sh.
#
# Every number comes from a line "HARDEN <area> key=value ..." that a test
# logs (t.Logf) after asserting its own invariants, or that fuzz.sh prints;
# this script only adds them up. It exits 1 if a test or a fuzzer failed or
# a secret was found.
set -uo pipefail

fuzztime=${1:-1m}
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
out=$(mktemp -d "${TMPDIR:-/tmp}/e2eimage-harden.XXXXXX")
export HARDEN_LONG="1"
race=()
[ "${HARDEN_RACE:-}" = 1 ] && race=(-race)

status=0
echo "== go test ${race[*]} ./test/... (long loops), output in $out/tests.log"
go test "${race[@]}" -count=1 -v -timeout 60m ./test/... >"$out/tests.log" 2>&1 || status=1
grep -E '^(--- FAIL|FAIL|ok|panic:)' "$out/tests.log" | grep -v '^--- FAIL: .*/' || true

if [ "$fuzztime" != 0 ]; then
	echo "== test/fuzz.sh $fuzztime"
	if ! FUZZ_LOG_DIR="$out/fuzz" bash test/fuzz.sh "$fuzztime" | tee "$out/fuzz.log" | grep -vE '^HARDEN'; then
		status=1
	fi
fi

grep -ohE 'HARDEN .*' "$out/tests.log" "$out/fuzz.log" 2>/dev/null >"$out/harden.txt"

# sum AREA KEY: the sum of KEY= over the HARDEN lines of AREA.
sum() {
	awk -v area="$1" -v key="$2" '
		$2 == area { for (i = 3; i <= NF; i++) { split($i, kv, "="); if (kv[1] == key) s += kv[2] } }
		END { print s + 0 }' "$out/harden.txt"
}
count() { awk -v area="$1" '$2 == area { n++ } END { print n + 0 }' "$out/harden.txt"; }

secrets=$(($(sum secrets found) + $(sum faults secrets_found) + $(sum kills secrets_found) + $(sum hostile secret_leaks)))
printf '\n%-34s %s\n' "MEASURE" "VALUE"
printf '%-34s %s\n' "fuzz targets run" "$(count fuzz)"
printf '%-34s %s\n' "fuzz executions" "$(sum fuzz execs)"
printf '%-34s %s\n' "fuzz new corpus entries" "$(sum fuzz new)"
printf '%-34s %s\n' "fuzz failures" "$(sum fuzz failures)"
printf '%-34s %s\n' "hostile VHDs tried" "$(sum hostile cases)"
printf '%-34s %s\n' "hostile reader/verb calls" "$(sum hostile calls)"
printf '%-34s %s\n' "  untyped errors/panics/hangs" "$(sum hostile untyped)/$(sum hostile panics)/$(sum hostile hangs)"
printf '%-34s %s\n' "faults injected (whole flow)" "$(sum faults injected)"
printf '%-34s %s\n' "  of which lost answers" "$(sum faults lost_answers)"
printf '%-34s %s\n' "  flows converged" "$(sum faults converged)"
printf '%-34s %s\n' "kills survived (SIGKILL)" "$(sum kills survived)"
printf '%-34s %s\n' "  flows converged after kills" "$(sum kills converged)"
printf '%-34s %s\n' "  stray temp files after kills" "$(sum kills stray_temp_files)"
printf '%-34s %s\n' "power cuts simulated (points)" "$(sum powercut crash_points)"
printf '%-34s %s\n' "  disk states loaded after a cut" "$(sum powercut disk_states)"
printf '%-34s %s\n' "  corrupt / lost after return" "$(sum powercut corrupt)/$(sum powercut lost_after_return)"
printf '%-34s %s\n' "insecure URLs refused" "$(sum tls refused_urls)"
printf '%-34s %s\n' "insecure transports accepted" "$(sum tls accepted_insecure)"
printf '%-34s %s\n' "secrets found in outputs" "$secrets"
sugg=$(grep -c '^HARDEN suggestion' "$out/harden.txt" || true)
printf '%-34s %s\n' "suggestions (code of other owners)" "$sugg"
grep '^HARDEN suggestion' "$out/harden.txt" | sed 's/^HARDEN suggestion: /  - /' | sort -u
echo "raw lines: $out/harden.txt"

[ "$secrets" -eq 0 ] || status=1
[ "$(sum powercut corrupt)" -eq 0 ] && [ "$(sum powercut lost_after_return)" -eq 0 ] || status=1
exit "$status"
