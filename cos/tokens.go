package cos

import (
	"context"
	"fmt"

	"github.com/IBM/ibm-cos-sdk-go/aws/credentials"
	"github.com/IBM/ibm-cos-sdk-go/aws/credentials/ibmiam/token"

	"github.com/e2eimage/e2eimage/secret"
)

// TokenSource supplies IAM access tokens (without the "Bearer " prefix),
// cached and renewed by the source. iam.Authenticator implements it, as
// kms.TokenSource asks of the same type.
type TokenSource interface {
	AccessToken(ctx context.Context) (*secret.String, error)
}

// tokenProvider hands the SDK's oauth signer the token source's current
// token on every request: the source does the caching, so the SDK's own
// token manager (a second cache, with its own IAM exchange) is not used.
type tokenProvider struct {
	ts       TokenSource
	instance string
}

const tokenProviderName = "e2eimage-iam"

func (p *tokenProvider) Retrieve() (credentials.Value, error) {
	return p.RetrieveWithContext(context.Background())
}

func (p *tokenProvider) RetrieveWithContext(ctx credentials.Context) (credentials.Value, error) {
	tok, err := p.ts.AccessToken(ctx)
	if err != nil {
		return credentials.Value{ProviderName: tokenProviderName}, fmt.Errorf("cos: getting an IAM token: %w", err)
	}
	return credentials.Value{
		Token:             token.Token{AccessToken: tok.Reveal(), TokenType: "Bearer"},
		ProviderName:      tokenProviderName,
		ProviderType:      "oauth",
		ServiceInstanceID: p.instance,
	}, nil
}

// IsExpired is always true: the source decides when a token is renewed.
func (p *tokenProvider) IsExpired() bool { return true }
