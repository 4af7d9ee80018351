#!/usr/bin/env bash
# extmod.sh checks that the public API is usable from another module and
# that README.md is a contract:
#
#   1. go test ./internal/extcheck: testdata/extmod's copies of the godoc
#      examples, of the tests that run the cloud examples, and of README.md's
#      Go blocks are verbatim (fix with: go test ./internal/extcheck -update).
#   2. In testdata/extmod (module example.com/extmod, which Go forbids this
#      module's internal packages): gofmt, go vet ./..., go test ./... —
#      examples with "// Output:" run as usual, the examples that need a cloud
#      and the README's Go blocks run against examples/cloudsim started as a
#      separate process, the others compile; fake/ runs e2e.Run through the
#      public simulated cloud (cloudsimtest) in its own process.
#   3. go test ./internal/readmetest: every command of README.md's sh blocks
#      runs, or (real cloud, go test) has its flags checked.
#
# Every number printed comes from the tests' own output (PASS lines and the
# count lines they log after their checks); the script exits 1 if a step
# failed or a count contradicts another.
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
out=$(mktemp -d "${TMPDIR:-/tmp}/e2eimage-extmod.XXXXXX")
trap 'rm -rf "$out"' EXIT
status=0
fail() { echo "FAIL: $*"; status=1; }

echo "== go test ./internal/extcheck (copies in testdata/extmod are verbatim)"
if go test -count=1 -v ./internal/extcheck >"$out/extcheck.log" 2>&1; then
  grep -E 'checked against their sources|Go blocks of README.md found' "$out/extcheck.log" | sed 's/^ *[a-z_]*\.go:[0-9]*: /   /'
else
  cat "$out/extcheck.log"; fail "testdata/extmod is not in step with its sources"
fi

echo "== testdata/extmod: gofmt, go vet ./..., go test ./..."
(
  cd testdata/extmod || exit 1
  bad=$(gofmt -l .)
  if [ -n "$bad" ]; then echo "gofmt would change: $bad"; exit 1; fi
  go vet ./... || exit 1
  go test -count=1 -v ./... >"$out/extmod.log" 2>&1
) || { [ -f "$out/extmod.log" ] && grep -E '^(---|    ---|FAIL|ok|panic)|\.go:[0-9]+:' "$out/extmod.log" | grep -v -- '--- PASS' | head -60; fail "testdata/extmod"; }

if [ -f "$out/extmod.log" ]; then
  declared=$(cat testdata/extmod/*/*example_test.go | grep -c '^func Example')
  with_output=$(cat testdata/extmod/*/*example_test.go | grep -cE '^[[:space:]]*// (Unordered o|O)utput:')
  ran_output=$(grep -cE '^--- PASS: Example' "$out/extmod.log")
  ran_cloud=$(grep -cE '^    --- PASS: TestExamplesAgainstTheSimulator/Example' "$out/extmod.log")
  readme_blocks=$(sed -nE 's/.* ([0-9]+) README blocks ran against the simulator.*/\1/p' "$out/extmod.log")
  packages=$(grep -cE '^ok ' "$out/extmod.log")
  fake=$(grep -cE '^--- PASS: TestPublicFake' "$out/extmod.log")
  compile_only=$((declared - ran_output - ran_cloud))
  echo "   $packages packages of example.com/extmod passed"
  echo "   $declared godoc examples compiled outside the module: $ran_output ran with // Output:, $ran_cloud ran against the simulator process, $compile_only compile-only"
  echo "   ${readme_blocks:-0} README Go blocks ran against the simulator process"
  echo "   $fake tests ran e2e.Run through the public fake (cloudsimtest), no process started"
  [ "$ran_output" -eq "$with_output" ] || fail "$with_output examples have an // Output: line but $ran_output passed"
  [ "$ran_cloud" -gt 0 ] || fail "no example ran against the simulator"
  [ "$compile_only" -ge 0 ] || fail "more examples passed ($((ran_output + ran_cloud))) than are declared ($declared)"
  [ "${readme_blocks:-0}" -gt 0 ] || fail "no README Go block ran"
  [ "$fake" -ge 2 ] || fail "the tests of the public fake (fake/) did not both pass"
fi

echo "== go test ./internal/readmetest (README.md's sh commands)"
if go test -count=1 -v -run TestReadmeCommands ./internal/readmetest >"$out/readme.log" 2>&1; then
  grep -E 'README.md: [0-9]+ sh blocks' "$out/readme.log" | sed 's/^ *[a-z_]*\.go:[0-9]*: /   /'
else
  cat "$out/readme.log"; fail "README.md's commands"
fi

[ $status -eq 0 ] && echo "extmod: ok" || echo "extmod: FAILED"
exit $status
