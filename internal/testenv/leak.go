package testenv

import (
	"fmt"
	"net/http"
	"os"
	"testing"

	"go.uber.org/goleak"
)

// VerifyTestMain runs the tests of m and exits, failing the run if
// goroutines are left over, as goleak.VerifyTestMain does, but first closes
// the idle connections of http.DefaultTransport. SDKs that use the default
// transport (keyprotect-go-client's token source, go-sdk-core) keep
// keep-alive connections, whose reader goroutines would otherwise count as
// leaks. Leaks are looked for only when the tests passed.
func VerifyTestMain(m *testing.M) {
	code := m.Run()
	http.DefaultTransport.(*http.Transport).CloseIdleConnections()
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintln(os.Stderr, "goleak:", err)
			code = 1
		}
	}
	os.Exit(code)
}
