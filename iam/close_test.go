package iam

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/e2eimage/e2eimage/internal/endpoint"
	"github.com/e2eimage/e2eimage/internal/secret"
)

// countedServer starts a test server for h that counts the connections
// open on its side.
func countedServer(t *testing.T, h http.Handler) (*httptest.Server, *atomic.Int32) {
	t.Helper()
	var open atomic.Int32
	srv := httptest.NewUnstartedServer(h)
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		switch s {
		case http.StateNew:
			open.Add(1)
		case http.StateClosed, http.StateHijacked:
			open.Add(-1)
		}
	}
	srv.Start()
	t.Cleanup(srv.Close)
	return srv, &open
}

// waitOpen waits up to 2s for the server to count want open connections.
func waitOpen(t *testing.T, what string, open *atomic.Int32, want int32) {
	t.Helper()
	for deadline := time.Now().Add(2 * time.Second); open.Load() != want && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
	}
	if got := open.Load(); got != want {
		t.Fatalf("%s: %d connections open at the server, want %d", what, got, want)
	}
}

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
		opts []AuthOption
	}{
		{"own transport", nil},
		{"WithTransport", []AuthOption{WithTransport(endpoint.NewTransport())}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := &fakeIAM{apiKey: "good-key-0123456789"}
			srv, open := countedServer(t, f)
			a, err := NewAuthenticator(secret.NewString(f.apiKey), append([]AuthOption{WithURL(srv.URL)}, tc.opts...)...)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := a.AccessToken(context.Background()); err != nil {
				t.Fatal(err)
			}
			waitOpen(t, "after a token request", open, 1)
			a.CloseIdleConnections()
			waitOpen(t, "after CloseIdleConnections", open, 0)
			if _, err := a.AccessToken(context.Background()); err != nil || f.requests.Load() != 1 {
				t.Errorf("the cached token must survive CloseIdleConnections: %v, %d requests", err, f.requests.Load())
			}
			a.InvalidateToken()
			if _, err := a.AccessToken(context.Background()); err != nil {
				t.Fatalf("token request after CloseIdleConnections: %v", err)
			}
			a.CloseIdleConnections()
			waitOpen(t, "after the second CloseIdleConnections", open, 0)
		})
	}
}

// Client.CloseIdleConnections closes the connections of both platform APIs
// and leaves the Authenticator's, which the caller may share.
func TestClientCloseIdleConnections(t *testing.T) {
	f := &fakeIAM{apiKey: "good-key-0123456789"}
	tokenSrv, tokenOpen := countedServer(t, f)
	idSrv, idOpen := countedServer(t, jsonAnswer(`{"serviceids":[]}`))
	polSrv, polOpen := countedServer(t, jsonAnswer(`{"policies":[]}`))
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
	waitOpen(t, "identity, after a call", idOpen, 1)
	waitOpen(t, "policy, after a call", polOpen, 1)
	c.CloseIdleConnections()
	waitOpen(t, "identity, after CloseIdleConnections", idOpen, 0)
	waitOpen(t, "policy, after CloseIdleConnections", polOpen, 0)
	waitOpen(t, "token, after Client.CloseIdleConnections", tokenOpen, 1)
	a.CloseIdleConnections()
	waitOpen(t, "token, after Authenticator.CloseIdleConnections", tokenOpen, 0)
}
