#!/usr/bin/env bash
# missing-tool.sh [TOOL]: runs the tests of the packages that build test
# images (those importing internal/imagetest) with TOOL (default sfdisk)
# missing from PATH, as on a machine without it:
#
#   1. outside CI they must pass, skipping what needs TOOL with a note that
#      names it ("TOOL not found (apt-get install ...)"), and never report
#      "subtest may have called FailNow on a parent test";
#   2. with CI=true they must fail, naming TOOL.
#
# PATH is rebuilt as a directory of links to every other program on it.
# Every figure printed is counted from the test output; exit 1 on a
# contradiction.
set -uo pipefail
tool=${1:-sfdisk}
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
work=$(mktemp -d "${TMPDIR:-/tmp}/e2eimage-missing-tool.XXXXXX")
trap 'rm -rf "$work"' EXIT
mkdir "$work/bin"
IFS=: read -ra dirs <<<"$PATH"
for d in "${dirs[@]}"; do
  [ -d "$d" ] || continue
  for f in "$d"/*; do
    b=$(basename "$f")
    [ "$b" = "$tool" ] || [ -e "$work/bin/$b" ] || ln -s "$f" "$work/bin/$b"
  done
done
[ -e "$work/bin/go" ] || ln -s "$(command -v go)" "$work/bin/go"
if PATH="$work/bin" command -v "$tool" >/dev/null; then echo "FAIL: $tool still on the rebuilt PATH"; exit 1; fi
pkgs=$(go list -test -f '{{.ImportPath}} {{join .Imports " "}}' ./... | grep ' github.com/e2eimage/e2eimage/internal/imagetest\b' |
  awk '{print $1}' | sed 's/_test$//' | sort -u)
echo "== packages that build test images: $(echo $pkgs | wc -w)"
status=0

echo "== without $tool, outside CI: must pass, skipping with a note naming $tool"
if env -u CI PATH="$work/bin" go test -count=1 -v $pkgs >"$work/local.log" 2>&1; then
  echo "   passed"
else
  grep -E '^(---|    ---|FAIL|ok)' "$work/local.log" | grep -v PASS | head -20; echo "FAIL: the tests failed without $tool outside CI"; status=1
fi
skips=$(grep -c "$tool not found" "$work/local.log")
parent=$(grep -c 'FailNow on a parent test' "$work/local.log")
echo "   $skips skip notes name $tool; $parent 'FailNow on a parent test' errors"
[ "$skips" -gt 0 ] || { echo "FAIL: no test said $tool was missing"; status=1; }
[ "$parent" -eq 0 ] || { echo "FAIL: a closure captured its parent test"; status=1; }

echo "== without $tool, CI=true: must fail, naming $tool"
if CI=true PATH="$work/bin" go test -count=1 -v $pkgs >"$work/ci.log" 2>&1; then
  echo "FAIL: the tests passed under CI without $tool"; status=1
else
  echo "   failed, as it must"
fi
named=$(grep -c "$tool not found" "$work/ci.log")
echo "   $named failures name $tool"
[ "$named" -gt 0 ] || { echo "FAIL: no failure named $tool"; status=1; }

[ $status -eq 0 ] && echo "missing-tool: ok" || echo "missing-tool: FAILED"
exit $status
