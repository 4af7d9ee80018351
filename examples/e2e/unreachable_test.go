package main

import (
	"encoding/json"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/e2eimage/e2eimage/internal/sampleimage"
)

// With every endpoint refusing connections, the command says once that it
// cannot reach the service, with the host, and exits exitUnreachable:
// not a preflight report of set-up fixes (exit 3).
func TestUnreachableExitCode(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := l.Addr().String()
	require.NoError(t, l.Close())
	dir := t.TempDir()
	u := "http://" + addr
	b, err := json.Marshal(map[string]string{"iam": u, "kms": u, "s3": u, "softlayer": u + "/rest/v3.1"})
	require.NoError(t, err)
	endpoints := filepath.Join(dir, "endpoints.json")
	require.NoError(t, os.WriteFile(endpoints, b, 0o600))
	image := filepath.Join(dir, "disk.raw")
	require.NoError(t, sampleimage.WriteFile(image, sampleimage.Options{Size: sampleimage.MinSize}))
	code, _, stderr := runMain(t, map[string]string{"IBMCLOUD_API_KEY": "key"},
		"-endpoints", endpoints, "-image", image, "-bucket", "b", "-service-id", "", "-import-api-key-file", writeKey(t, dir),
		"-root-key-crn", "crn:v1:bluemix:public:kms:us-south:a/0123456789abcdef0123456789abcdef:11111111-2222-3333-4444-555555555555:key:66666666-7777-8888-9999-000000000000",
		"-state", filepath.Join(dir, "state.json"))
	require.Equal(t, exitUnreachable, code, stderr)
	// Once in the step's line, once in the summary; not once per check.
	require.Equal(t, 2, strings.Count(stderr, "cannot reach"), stderr)
	require.Contains(t, stderr, addr)
	require.NotContains(t, stderr, "MISSING")
}

func writeKey(t *testing.T, dir string) string {
	p := filepath.Join(dir, "import.key")
	require.NoError(t, os.WriteFile(p, []byte("import-key\n"), 0o600))
	return p
}
