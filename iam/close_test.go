package iam

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"

	"github.com/e2eimage/e2eimage/internal/endpoint"
	"github.com/e2eimage/e2eimage/internal/testenv"
	"github.com/e2eimage/e2eimage/secret"
)

// jsonAnswer answers every request with body.
func jsonAnswer(body string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, body)
	})
}

func TestAuthenticatorCloseIdleConnections(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts []Option
	}{
		{"own transport", nil},
		{"WithHTTPClient", []Option{WithHTTPClient(&http.Client{Transport: endpoint.NewTransport()})}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := &fakeIAM{apiKey: "good-key-0123456789"}
			srv, open := startCounted(t, f)
			a, err := NewAuthenticator(secret.NewString(f.apiKey), append([]Option{WithURL(srv.URL)}, tc.opts...)...)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := a.AccessToken(context.Background()); err != nil {
				t.Fatal(err)
			}
			testenv.WaitConns(t, open, 1, "after a token request")
			a.CloseIdleConnections()
			testenv.WaitConns(t, open, 0, "after CloseIdleConnections")
			if _, err := a.AccessToken(context.Background()); err != nil || f.requests.Load() != 1 {
				t.Errorf("the cached token must survive CloseIdleConnections: %v, %d requests", err, f.requests.Load())
			}
			a.InvalidateToken()
			if _, err := a.AccessToken(context.Background()); err != nil {
				t.Fatalf("token request after CloseIdleConnections: %v", err)
			}
			a.CloseIdleConnections()
			testenv.WaitConns(t, open, 0, "after the second CloseIdleConnections")
		})
	}
}

// Client.CloseIdleConnections closes the connections of both platform APIs
// and leaves the Authenticator's, which the caller may share.
func TestClientCloseIdleConnections(t *testing.T) {
	f := &fakeIAM{apiKey: "good-key-0123456789"}
	tokenSrv, tokenOpen := startCounted(t, f)
	idSrv, idOpen := startCounted(t, jsonAnswer(`{"serviceids":[]}`))
	polSrv, polOpen := startCounted(t, jsonAnswer(`{"policies":[]}`))
	a, err := NewAuthenticator(secret.NewString(f.apiKey), WithURL(tokenSrv.URL))
	if err != nil {
		t.Fatal(err)
	}
	c, err := NewClient(a, "acct1", WithIdentityURL(idSrv.URL), WithPolicyURL(polSrv.URL), WithRetries(0, 0))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if sid, err := c.FindServiceID(ctx, "x"); err != nil || sid != nil {
		t.Fatalf("FindServiceID = %v, %v", sid, err)
	}
	if id, err := c.FindAuthorization(ctx, Authorization{Source: "is", Target: "kms"}); err != nil || id != "" {
		t.Fatalf("FindAuthorization = %q, %v", id, err)
	}
	testenv.WaitConns(t, idOpen, 1, "identity, after a call")
	testenv.WaitConns(t, polOpen, 1, "policy, after a call")
	c.CloseIdleConnections()
	testenv.WaitConns(t, idOpen, 0, "identity, after CloseIdleConnections")
	testenv.WaitConns(t, polOpen, 0, "policy, after CloseIdleConnections")
	testenv.WaitConns(t, tokenOpen, 1, "token, after Client.CloseIdleConnections")
	a.CloseIdleConnections()
	testenv.WaitConns(t, tokenOpen, 0, "token, after Authenticator.CloseIdleConnections")
}

// startCounted starts a test server for h that counts the connections open
// on its side.
func startCounted(t *testing.T, h http.Handler) (*httptest.Server, *atomic.Int32) {
	srv := httptest.NewUnstartedServer(h)
	return srv, testenv.StartCounting(t, srv)
}
