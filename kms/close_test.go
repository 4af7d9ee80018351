package kms

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/e2eimage/e2eimage/internal/endpoint"
	"github.com/e2eimage/e2eimage/internal/testenv"
)

func TestCloseIdleConnections(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts []Option
	}{
		{"own transport", nil},
		{"WithHTTPClient", []Option{WithHTTPClient(&http.Client{Transport: endpoint.NewTransport()})}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := httptest.NewUnstartedServer(&scripted{})
			open := testenv.StartCounting(t, srv)
			c, err := New(testKPCRN, &staticTokens{}, append([]Option{WithURL(srv.URL), WithRetryPolicy(fastPolicy(1))}, tc.opts...)...)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := c.Wrap(context.Background(), testDEK(t)); err != nil {
				t.Fatal(err)
			}
			testenv.WaitConns(t, open, 1, "server") // kept alive for the next call
			c.CloseIdleConnections()
			testenv.WaitConns(t, open, 0, "server")
			// The client stays usable.
			if _, err := c.Wrap(context.Background(), testDEK(t)); err != nil {
				t.Fatalf("Wrap after CloseIdleConnections: %v", err)
			}
			c.CloseIdleConnections()
			testenv.WaitConns(t, open, 0, "server")
		})
	}
}
