package iam

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/IBM/go-sdk-core/v5/core"
	"github.com/IBM/platform-services-go-sdk/iamidentityv1"

	"github.com/e2eimage/e2eimage/secret"
)

// ServiceID is a service ID found or created by EnsureServiceID.
type ServiceID struct {
	ID    string // "ServiceId-..."
	IAMID string // "iam-ServiceId-...", the subject of its policies
	CRN   string
	Name  string
}

// FindServiceID returns the service ID called name, or nil when there is
// none. IAM does not keep names unique; when several exist, the oldest is
// returned (so repeated runs agree) and a warning is logged.
func (c *Client) FindServiceID(ctx context.Context, name string) (*ServiceID, error) {
	found, err := c.serviceIDsNamed(ctx, name)
	if err != nil {
		return nil, err
	}
	if len(found) == 0 {
		return nil, nil
	}
	if len(found) > 1 {
		c.log.LogAttrs(ctx, slog.LevelWarn, "iam: several service IDs share the name; using the oldest",
			slog.String("name", name), slog.Int("count", len(found)), slog.String("id", found[0].ID))
	}
	return &found[0], nil
}

// serviceIDsNamed lists the service IDs called name, oldest first (IAM's
// created_at order; equal times keep IAM's order).
func (c *Client) serviceIDsNamed(ctx context.Context, name string) ([]ServiceID, error) {
	type entry struct {
		sid     ServiceID
		created time.Time
	}
	var found []entry
	opts := &iamidentityv1.ListServiceIdsOptions{
		AccountID: &c.accountID,
		Name:      &name,
		Pagesize:  core.Int64Ptr(serviceIDListPageMax),
		Sort:      core.StringPtr("created_at"),
	}
	for {
		list, resp, err := c.identity.ListServiceIdsWithContext(ctx, opts)
		if err != nil {
			return nil, apiError("listing service IDs named "+name, resp, err)
		}
		for _, s := range list.Serviceids {
			if deref(s.Name) != name { // the name filter is applied here too
				continue
			}
			e := entry{sid: ServiceID{ID: deref(s.ID), IAMID: deref(s.IamID), CRN: deref(s.CRN), Name: name}}
			if s.CreatedAt != nil {
				e.created = time.Time(*s.CreatedAt)
			}
			found = append(found, e)
		}
		tok := pageToken(list.Next)
		if tok == "" || len(list.Serviceids) == 0 {
			break
		}
		opts.Pagetoken = &tok
	}
	slices.SortStableFunc(found, func(a, b entry) int {
		if a.created.IsZero() || b.created.IsZero() {
			return 0 // no time to compare: keep IAM's order
		}
		return a.created.Compare(b.created)
	})
	out := make([]ServiceID, len(found))
	for i, e := range found {
		out[i] = e.sid
	}
	return out, nil
}

// APIKeys lists the IDs and names of the API keys of an identity (never
// their values: IAM does not return them after creation).
func (c *Client) APIKeys(ctx context.Context, iamID string) ([]APIKeyInfo, error) {
	var out []APIKeyInfo
	opts := &iamidentityv1.ListAPIKeysOptions{AccountID: &c.accountID, IamID: &iamID, Pagesize: core.Int64Ptr(apiKeyListPageSize)}
	for {
		list, resp, err := c.identity.ListAPIKeysWithContext(ctx, opts)
		if err != nil {
			return nil, apiError("listing the API keys of "+iamID, resp, err)
		}
		for _, k := range list.Apikeys {
			if deref(k.IamID) == iamID {
				out = append(out, APIKeyInfo{ID: deref(k.ID), Name: deref(k.Name)})
			}
		}
		tok := pageToken(list.Next)
		if tok == "" || len(list.Apikeys) == 0 {
			break
		}
		opts.Pagetoken = &tok
	}
	return out, nil
}

// APIKeyInfo identifies an API key without its value.
type APIKeyInfo struct {
	ID   string
	Name string
}

// ServiceIDSpec describes the service ID that imports (and exports) images.
type ServiceIDSpec struct {
	// Name of the service ID (required). It is how later runs find it.
	Name string
	// Description is stored with the service ID.
	Description string
	// APIKeyName names a created API key (default Name + "-apikey").
	APIKeyName string
	// KnownAPIKey is the service ID's API key saved from an earlier run.
	// When it still authenticates as this service ID it is returned as is
	// and no key is created. Optional.
	KnownAPIKey *secret.String
}

// ServiceIDResult is what EnsureServiceID found or made.
type ServiceIDResult struct {
	ServiceID
	// Created is true when the service ID was created by this call.
	Created bool
	// APIKey is the service ID's API key to use: the new one, or
	// KnownAPIKey after it was verified. IAM shows a key's value only once,
	// at creation: store it (file mode 0600 or a secret manager).
	APIKey *secret.String
	// APIKeyID is the ID of the API key in APIKey ("" for a known key).
	APIKeyID string
	// APIKeyCreated is true when this call created an API key.
	APIKeyCreated bool
	// Note explains a decision the caller should know about, such as a new
	// key created for a service ID that already had keys.
	Note string
}

// EnsureServiceID finds the service ID called spec.Name or creates it, and
// makes sure the caller ends up holding one of its API keys:
//
//   - a new service ID is created with an API key; when the create was
//     carried out more than once (a retry after a lost answer), the oldest
//     service ID of the name is kept, the same one FindServiceID returns,
//     and the others that appeared since the lookup are deleted (Note says
//     so);
//   - for an existing service ID, spec.KnownAPIKey is checked (it must
//     authenticate as this service ID) and returned;
//   - otherwise a new API key is created, because IAM never returns the
//     value of an existing key; Note says so, and the older keys are left in
//     place (delete them once nothing uses them).
func (c *Client) EnsureServiceID(ctx context.Context, spec ServiceIDSpec) (*ServiceIDResult, error) {
	if spec.Name == "" {
		return nil, errors.New("iam: a service ID name is required")
	}
	keyName := spec.APIKeyName
	if keyName == "" {
		keyName = spec.Name + "-apikey"
	}
	sid, err := c.FindServiceID(ctx, spec.Name)
	if err != nil {
		return nil, err
	}
	if sid == nil {
		return c.createServiceID(ctx, spec, keyName)
	}
	res := &ServiceIDResult{ServiceID: *sid}
	if !spec.KnownAPIKey.Empty() {
		owner, verr := c.apiKeyOwner(ctx, spec.KnownAPIKey)
		switch {
		case verr == nil && owner == sid.IAMID:
			res.APIKey = secret.NewString(spec.KnownAPIKey.Reveal())
			return res, nil
		case verr == nil:
			res.Note = fmt.Sprintf("the API key given belongs to %s, not to service ID %s; ", owner, sid.ID)
		case errors.Is(verr, ErrAuthentication):
			res.Note = "the API key given no longer authenticates (deleted or disabled); "
		default:
			return nil, fmt.Errorf("iam: checking the known API key of service ID %s: %w", sid.ID, verr)
		}
	}
	keys, err := c.APIKeys(ctx, sid.IAMID)
	if err != nil {
		return nil, err
	}
	if len(keys) > 0 {
		res.Note += fmt.Sprintf("service ID %s already had %d API key(s), whose values IAM does not return; created a new API key", sid.ID, len(keys))
	} else {
		res.Note += fmt.Sprintf("service ID %s had no API key; created one", sid.ID)
	}
	if err := c.createAPIKey(ctx, res, keyName); err != nil {
		return nil, err
	}
	c.log.LogAttrs(ctx, slog.LevelInfo, "iam: "+res.Note, slog.String("serviceID", sid.ID), slog.String("apiKeyID", res.APIKeyID))
	return res, nil
}

// createServiceID creates the service ID called spec.Name, which the lookup
// just before found missing, and gives it an API key.
//
// The create is not idempotent: when its answer is lost after IAM carried
// it out, go-sdk-core retries and a second service ID of the same name
// appears, and FindServiceID (the oldest) would then disagree with the one
// returned here. So after the create the name is listed again and the
// oldest service ID is used; the others, which all appeared after our
// lookup found none, are deleted. A concurrent creator whose service ID is
// deleted this way converges the same way: its own re-listing shows the
// older one. (Only equal created_at times could make two creators pick
// different ones; IAM stamps them to the millisecond.)
//
// The API key is created separately, not inline with the service ID, so
// that a service ID lost and found again carries no key whose value
// nobody holds.
func (c *Client) createServiceID(ctx context.Context, spec ServiceIDSpec, keyName string) (*ServiceIDResult, error) {
	opts := c.identity.NewCreateServiceIDOptions(c.accountID, spec.Name)
	if spec.Description != "" {
		opts.SetDescription(spec.Description)
	}
	s, resp, err := c.identity.CreateServiceIDWithContext(ctx, opts)
	if err != nil {
		return nil, apiError("creating service ID "+spec.Name, resp, err)
	}
	created := ServiceID{ID: deref(s.ID), IAMID: deref(s.IamID), CRN: deref(s.CRN), Name: spec.Name}
	c.log.LogAttrs(ctx, slog.LevelInfo, "iam: created service ID", slog.String("name", spec.Name), slog.String("id", created.ID))
	res := &ServiceIDResult{ServiceID: created, Created: true}
	all, err := c.serviceIDsNamed(ctx, spec.Name)
	if err != nil {
		return nil, fmt.Errorf("iam: checking for duplicates of the service ID just created: %w", err)
	}
	if len(all) > 0 {
		res.ServiceID = all[0]
	}
	var extra []string
	for _, sid := range all {
		if sid.ID != res.ID {
			extra = append(extra, sid.ID)
		}
	}
	if len(extra) > 0 {
		deleted, err := c.deleteServiceIDs(ctx, extra)
		res.Note = fmt.Sprintf("%d more service ID(s) named %s appeared while creating it (a retried create); using the oldest, %s, and deleted %d of them",
			len(extra), spec.Name, res.ID, deleted)
		if err != nil {
			res.Note += fmt.Sprintf(" (%v)", err)
		}
		c.log.LogAttrs(ctx, slog.LevelWarn, "iam: "+res.Note, slog.String("name", spec.Name), slog.String("id", res.ID))
	}
	if err := c.createAPIKey(ctx, res, keyName); err != nil {
		return nil, err
	}
	return res, nil
}

// deleteServiceIDs deletes the service IDs ids (and with them their API
// keys), counting one already gone as deleted. It tries every one and
// returns how many are gone and the first error.
func (c *Client) deleteServiceIDs(ctx context.Context, ids []string) (int, error) {
	var first error
	n := 0
	for _, id := range ids {
		resp, err := c.identity.DeleteServiceIDWithContext(ctx, c.identity.NewDeleteServiceIDOptions(id))
		if err != nil && statusOf(resp) != http.StatusNotFound {
			if first == nil {
				first = apiError("deleting the duplicate service ID "+id, resp, err)
			}
			continue
		}
		n++
	}
	return n, first
}

func (c *Client) createAPIKey(ctx context.Context, res *ServiceIDResult, keyName string) error {
	opts := c.identity.NewCreateAPIKeyOptions(keyName, res.IAMID)
	opts.SetAccountID(c.accountID)
	opts.SetDescription("e2eimage: imports encrypted images for " + res.Name)
	opts.SetStoreValue(false)
	k, resp, err := c.identity.CreateAPIKeyWithContext(ctx, opts)
	if err != nil {
		return apiError("creating an API key for service ID "+res.ID, resp, err)
	}
	if k.Apikey == nil || *k.Apikey == "" {
		return fmt.Errorf("iam: creating an API key for service ID %s: IAM returned no key value", res.ID)
	}
	res.APIKey = secret.NewString(*k.Apikey)
	res.APIKeyID = deref(k.ID)
	res.APIKeyCreated = true
	return nil
}

// apiKeyOwner returns the IAM ID an API key authenticates as, read from the
// iam_id claim of an access token issued for it. The token comes straight
// from IAM over TLS, so its signature is not checked here.
func (c *Client) apiKeyOwner(ctx context.Context, key *secret.String) (string, error) {
	a, err := NewAuthenticator(key, WithURL(c.auth.url), WithHTTPClient(&http.Client{Transport: c.auth.transport}), WithTokenTimeout(c.auth.timeout))
	if err != nil {
		return "", err
	}
	tok, err := a.AccessToken(ctx)
	if err != nil {
		return "", err
	}
	return tokenIAMID(tok)
}

// tokenIAMID reads the iam_id claim of a JWT access token.
func tokenIAMID(tok *secret.String) (string, error) {
	parts := strings.Split(tok.Reveal(), ".")
	if len(parts) != 3 {
		return "", errors.New("iam: the access token is not a JWT")
	}
	payload, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(parts[1], "="))
	if err != nil {
		return "", errors.New("iam: the access token's claims are not base64url")
	}
	var claims struct {
		IamID string `json:"iam_id"`
	}
	if err := json.Unmarshal(payload, &claims); err != nil || claims.IamID == "" {
		return "", errors.New("iam: the access token carries no iam_id claim")
	}
	return claims.IamID, nil
}
