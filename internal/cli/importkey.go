package cli

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/e2eimage/e2eimage/e2e/ibmcloud"
	"github.com/e2eimage/e2eimage/iam"
	"github.com/e2eimage/e2eimage/secret"
)

// ErrKeyRefused is matched by the errors of ImportKey that refuse a
// preparation before it changes anything (a usage error: exit 2).
var ErrKeyRefused = errors.New("refused before creating anything")

// ImportKey decides, before a preparation creates anything, which API key
// of the import service ID called name it uses, so that it never creates
// an API key it cannot keep (IAM shows a key's value once, at creation):
//
//   - saveFile ("" for none) is where a new key would be stored. When it
//     exists, it holds the key an earlier preparation saved, which is used
//     as the known key (given, from -import-api-key-file or
//     E2E_IMPORT_API_KEY, must then be the same or nil): running the same
//     command again creates nothing.
//   - The known key is checked against IAM first: it must authenticate as
//     that service ID (the iam_id of an access token IAM issues for it).
//   - A preparation that would create a key (no service ID yet, no known
//     key, or one that no longer works) goes ahead only when saveFile is
//     given and does not exist yet; otherwise ImportKey refuses
//     (ErrKeyRefused) and nothing has been created.
//
// It returns the known key to give e2e.Plan.ImportAPIKey (nil when a new
// one is to be made) and a line saying what was decided. c and auth are the
// preparing identity's IAM client and authenticator (ibmcloud.Clients.IAM,
// Clients.Auth); auth's URL is where the known key is checked.
func ImportKey(ctx context.Context, c *iam.Client, auth *iam.Authenticator, name, saveFile string, given *secret.String) (*secret.String, string, error) {
	refuse := func(format string, a ...any) (*secret.String, string, error) {
		return nil, "", fmt.Errorf("%w: %s", ErrKeyRefused, fmt.Sprintf(format, a...))
	}
	known, from := given, "the service ID's key given"
	saved := false
	if saveFile != "" {
		if _, err := os.Stat(saveFile); err == nil {
			k, err := ibmcloud.ReadSecretFile(saveFile)
			if err != nil {
				return nil, "", err
			}
			if !given.Empty() && given.Reveal() != k.Reveal() {
				return refuse("%s holds another API key than -import-api-key-file or E2E_IMPORT_API_KEY; give one of them", saveFile)
			}
			known, from, saved = k, "the API key saved in "+saveFile, true
		}
	}
	canSave := saveFile != "" && !saved
	sid, err := c.FindServiceID(ctx, name)
	if err != nil {
		return nil, "", err
	}
	switch {
	case sid == nil && canSave:
		return nil, fmt.Sprintf("service ID %s will be created, its new API key saved in %s", name, saveFile), nil
	case sid == nil && saved:
		return refuse("%s holds an API key, but there is no service ID %s (deleted?): the key of a new one could not be saved there; "+
			"move %s away or name another -save-api-key file", saveFile, name, saveFile)
	case sid == nil:
		return refuse("there is no service ID %s: give -save-api-key FILE to keep the API key of the new one (IAM shows it only once)", name)
	case known.Empty() && canSave:
		return nil, fmt.Sprintf("service ID %s gets a new API key, saved in %s", sid.ID, saveFile), nil
	case known.Empty():
		return refuse("give -save-api-key FILE (IAM shows a new API key only once), or the service ID's current key (-import-api-key-file or E2E_IMPORT_API_KEY)")
	}
	owner, err := KeyOwner(ctx, auth.URL(), known)
	var why string
	switch {
	case errors.Is(err, iam.ErrAuthentication):
		why = "no longer authenticates (deleted or disabled)"
	case err != nil:
		return nil, "", fmt.Errorf("checking %s: %w", from, err)
	case owner != sid.IAMID:
		why = "belongs to " + owner + ", not to service ID " + sid.ID
	default:
		return known, fmt.Sprintf("using %s, an API key of service ID %s", from, sid.ID), nil
	}
	if canSave {
		return nil, fmt.Sprintf("%s %s: service ID %s gets a new API key, saved in %s", from, why, sid.ID, saveFile), nil
	}
	if saved {
		return refuse("%s %s; move %s away (or name another -save-api-key file) to have a new key made and saved", from, why, saveFile)
	}
	return refuse("%s %s; give -save-api-key FILE to have a new key made and saved", from, why)
}

// KeyOwner returns the IAM ID that key authenticates as: the iam_id claim
// of an access token the IAM at iamURL issues for it. The token comes
// straight from IAM, so its signature is not checked. An API key IAM
// refuses gives an error matching iam.ErrAuthentication.
func KeyOwner(ctx context.Context, iamURL string, key *secret.String) (string, error) {
	a, err := iam.NewAuthenticator(key, iam.WithURL(iamURL))
	if err != nil {
		return "", err
	}
	defer a.CloseIdleConnections()
	tok, err := a.AccessToken(ctx)
	if err != nil {
		return "", err
	}
	parts := strings.Split(tok.Reveal(), ".")
	if len(parts) != 3 {
		return "", errors.New("the access token is not a JWT")
	}
	payload, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(parts[1], "="))
	if err != nil {
		return "", errors.New("the access token's claims are not base64url")
	}
	var claims struct {
		IAMID string `json:"iam_id"`
	}
	if err := json.Unmarshal(payload, &claims); err != nil || claims.IAMID == "" {
		return "", errors.New("the access token carries no iam_id claim")
	}
	return claims.IAMID, nil
}
