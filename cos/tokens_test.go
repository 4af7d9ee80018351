package cos

import (
	"bytes"
	"context"
	"errors"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/e2eimage/e2eimage/iam"
	"github.com/e2eimage/e2eimage/internal/cloudsim"
	"github.com/e2eimage/e2eimage/secret"
)

// countingTokens counts the tokens a client asks its source for.
type countingTokens struct {
	ts    TokenSource
	calls atomic.Int64
}

func (c *countingTokens) AccessToken(ctx context.Context) (*secret.String, error) {
	c.calls.Add(1)
	return c.ts.AccessToken(ctx)
}

// A client given Tokens signs every request with the source's token (one
// cache shared with kms, iam and audit), and a source that fails makes the
// request fail with its error.
func TestTokensFromSharedSource(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	sim, err := cloudsim.Start(ctx, cloudsim.Options{Seed: 43})
	require.NoError(t, err)
	t.Cleanup(func() { cancel(); _ = sim.Close() })

	auth, err := iam.NewAuthenticator(secret.NewString(sim.Account.APIKey), iam.WithURL(sim.URLs.IAM))
	require.NoError(t, err)
	t.Cleanup(auth.CloseIdleConnections)
	tokens := &countingTokens{ts: auth}
	c, err := New(Config{Region: sim.Account.Region, Endpoint: sim.URLs.S3, Tokens: tokens,
		ServiceInstanceID: sim.Account.COSInstanceCRN})
	require.NoError(t, err)
	t.Cleanup(c.CloseIdleConnections)

	body := bytes.Repeat([]byte("e2e"), 1000)
	_, err = c.Upload(t.Context(), sim.Account.Bucket, "tokens.bin", bytes.NewReader(body), int64(len(body)))
	require.NoError(t, err)
	require.Positive(t, tokens.calls.Load(), "requests were not signed with the shared source's tokens")

	refused := errors.New("token source refused")
	bad, err := New(Config{Region: sim.Account.Region, Endpoint: sim.URLs.S3, Tokens: failingTokens{refused},
		ServiceInstanceID: sim.Account.COSInstanceCRN, MaxRetries: -1})
	require.NoError(t, err)
	t.Cleanup(bad.CloseIdleConnections)
	_, err = bad.Stat(t.Context(), sim.Account.Bucket, "tokens.bin")
	require.Error(t, err)
	require.Contains(t, err.Error(), "token source refused")

	_, err = New(Config{Region: "us-south", Tokens: tokens, APIKey: secret.NewString("k")})
	require.ErrorIs(t, err, ErrConfig)
}

type failingTokens struct{ err error }

func (f failingTokens) AccessToken(context.Context) (*secret.String, error) { return nil, f.err }
