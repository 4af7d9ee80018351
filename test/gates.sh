#!/usr/bin/env bash
# gates.sh runs the checks that go vet and go test ./... do not make:
#
#   1. go generate ./xts makes exactly the committed assembly and stubs;
#   2. the purego build (portable xts, no assembly) passes the tests of
#      xts, vhd, vhdcrypt (the encryptor) and e2e;
#   3. a non-amd64 build (arm64) type-checks and vets, tests included, and
#      the tests of xts, vhd and vhdcrypt pass on arm64 under qemu-aarch64
#      (the portable kernel on another architecture);
#   4. staticcheck (v0.8.2, installed if missing) reports nothing;
#   5. the xts kernels this machine runs are named, counted from the calls
#      that reached them (TestKernelsReport), and XTS_REQUIRE fails the
#      gate when a listed kernel is absent or did not run, e.g.
#      XTS_REQUIRE=vaes,avx512 test/gates.sh on a machine that must
#      exercise the wide kernels.
#
# Usage: test/gates.sh            (from anywhere; .ci/run calls it)
# It stops at the first gate that fails, with exit status 1.
set -euo pipefail
cd "$(dirname "$0")/.."
GOBIN="$(go env GOPATH)/bin"
export PATH="$PATH:$GOBIN"
start=$SECONDS

gate() { echo "== gate: $*"; }
took() { echo "   ($((SECONDS - start)) s so far)"; }

gate "go generate ./xts reproduces the committed assembly"
generated=(xts/xts_amd64.s xts/xts_amd64_stubs.go)
tmp=$(mktemp -d "${TMPDIR:-/tmp}/e2eimage-gates.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
status_before=$(git status --porcelain -- xts)
for f in "${generated[@]}"; do cp "$f" "$tmp/$(basename "$f")"; done
go generate ./xts
stale=0
for f in "${generated[@]}"; do
	if ! cmp -s "$tmp/$(basename "$f")" "$f"; then
		echo "$f is not what go generate ./xts makes (xts/_asm/main.go changed without regenerating?):"
		diff -u "$tmp/$(basename "$f")" "$f" | head -40 || true
		cp "$tmp/$(basename "$f")" "$f" # leave the checkout as it was
		stale=1
	fi
done
if [ "$(git status --porcelain -- xts)" != "$status_before" ]; then
	echo "go generate ./xts changed other files under xts:"
	git status --porcelain -- xts
	stale=1
fi
[ "$stale" = 0 ] || exit 1
if [ -n "${CI:-}" ]; then
	git diff --exit-code --stat -- xts # a CI checkout is clean: nothing may differ from the commit
fi
took

gate "purego build: go test -tags purego ./xts ./vhd ./vhdcrypt ./e2e"
# XTS_REQUIRE names assembly kernels, which the purego build has none of.
env -u XTS_REQUIRE go test -count=1 -tags purego ./xts ./vhd ./vhdcrypt ./e2e
took

gate "GOARCH=arm64 go vet ./... (a build without the amd64 assembly)"
GOARCH=arm64 go vet ./...
took

gate "GOARCH=arm64 go test ./xts ./vhd ./vhdcrypt under qemu-aarch64"
if command -v qemu-aarch64 >/dev/null; then
	env -u XTS_REQUIRE GOARCH=arm64 go test -count=1 -exec qemu-aarch64 ./xts ./vhd ./vhdcrypt
elif [ -n "${CI:-}" ]; then
	echo "qemu-aarch64 is missing (Debian package qemu-user; .ci/run installs it)"
	exit 1
else
	echo "   not run: qemu-aarch64 is missing (apt-get install qemu-user)"
fi
took

gate "staticcheck ./..."
if ! command -v staticcheck >/dev/null || ! staticcheck -version | grep -q '(0\.8\.2)'; then
	go install honnef.co/go/tools/cmd/staticcheck@v0.8.2
fi
staticcheck ./...
took

gate "xts kernels run on this machine${XTS_REQUIRE:+ (XTS_REQUIRE=$XTS_REQUIRE)}"
report=$(go test -count=1 -v -run '^TestKernelsReport$' ./xts 2>&1) || {
	echo "$report"
	exit 1
}
line=$(grep -o 'xts kernels run: .*' <<<"$report" || true)
if [ -z "$line" ]; then
	echo "TestKernelsReport printed no 'xts kernels run:' line:"
	echo "$report"
	exit 1
fi
echo "   $line"
took
echo "== gates passed in $((SECONDS - start)) s"
