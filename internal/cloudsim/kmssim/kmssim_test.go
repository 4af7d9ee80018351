package kmssim_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	kp "github.com/IBM/keyprotect-go-client"
	"github.com/stretchr/testify/require"

	"github.com/e2eimage/e2eimage/internal/cloudsim/atsim"
	"github.com/e2eimage/e2eimage/internal/cloudsim/iamsim"
	"github.com/e2eimage/e2eimage/internal/cloudsim/kmssim"
	"github.com/e2eimage/e2eimage/internal/cloudsim/simcore"
	"github.com/e2eimage/e2eimage/internal/testenv"
)

func TestMain(m *testing.M) { testenv.VerifyTestMain(m) }

const (
	acct     = "0123456789abcdef0123456789abcdef"
	ownerKey = "owner-api-key-0123456789abcdef0123456789"
	instance = "11111111-2222-4333-8444-555555555555"
)

type fixture struct {
	iam    *iamsim.Server
	kms    *kmssim.Server
	events *atsim.Store
	clock  *simcore.Clock
	iamURL string
	kmsURL string
}

func newFixture(t *testing.T, service string) *fixture {
	t.Helper()
	f := &fixture{events: atsim.NewStore(0), clock: simcore.NewClock(time.Now(), 1)}
	var err error
	f.iam, err = iamsim.New(iamsim.Config{AccountID: acct, OwnerAPIKey: ownerKey})
	require.NoError(t, err)
	f.kms, err = kmssim.New(kmssim.Config{
		ServiceName: service, InstanceID: instance, AccountID: acct,
		Identity: f.iam, Authz: f.iam, Events: f.events, Clock: f.clock,
	})
	require.NoError(t, err)
	iamSrv := httptest.NewServer(f.iam.Handler())
	t.Cleanup(iamSrv.Close)
	kmsSrv := httptest.NewServer(f.kms.Handler())
	t.Cleanup(kmsSrv.Close)
	f.iamURL, f.kmsURL = iamSrv.URL, kmsSrv.URL
	return f
}

func (f *fixture) client(t *testing.T, apiKey, inst string) *kp.Client {
	t.Helper()
	c, err := kp.New(kp.ClientConfig{
		BaseURL: f.kmsURL, APIKey: apiKey, TokenURL: f.iamURL + "/identity/token", InstanceID: inst,
	}, kp.DefaultTransport())
	require.NoError(t, err)
	return c
}

func b64(b []byte) []byte { return []byte(base64.StdEncoding.EncodeToString(b)) }

func kpErr(t *testing.T, err error) *kp.Error {
	t.Helper()
	var e *kp.Error
	require.True(t, errors.As(err, &e), "want *kp.Error, got %T: %v", err, err)
	return e
}

func reasonCode(e *kp.Error) string {
	if len(e.Reasons) == 0 {
		return ""
	}
	return e.Reasons[0].Code
}

func TestKeyLifecycleThroughKPClient(t *testing.T) {
	f := newFixture(t, kmssim.ServiceKeyProtect)
	c := f.client(t, ownerKey, instance)
	ctx := context.Background()

	root, err := c.CreateRootKey(ctx, "root-1", nil)
	require.NoError(t, err)
	require.False(t, root.Extractable)
	require.Equal(t, 1, root.State)
	require.Equal(t, "crn:v1:bluemix:public:kms:us-south:a/"+acct+":"+instance+":key:"+root.ID, root.CRN)
	require.Equal(t, "default", root.KeyRingID)
	require.NotEmpty(t, root.KeyVersion.ID)

	got, err := c.GetKey(ctx, root.ID)
	require.NoError(t, err)
	require.Equal(t, root.ID, got.ID)
	require.Empty(t, got.Payload, "root keys never leave the service")
	md, err := c.GetKeyMetadata(ctx, root.ID)
	require.NoError(t, err)
	require.Equal(t, "root-1", md.Name)

	material := make([]byte, 32)
	_, _ = rand.Read(material)
	imported, err := c.CreateImportedRootKey(ctx, "imported", nil, base64.StdEncoding.EncodeToString(material), "", "")
	require.NoError(t, err)
	require.True(t, imported.Imported)

	_, err = c.CreateImportedRootKey(ctx, "short", nil, base64.StdEncoding.EncodeToString(material[:10]), "", "")
	require.Equal(t, http.StatusBadRequest, kpErr(t, err).StatusCode)

	std, err := c.CreateKeyWithOptions(ctx, "standard", true)
	require.NoError(t, err)
	require.True(t, std.Extractable)
	gotStd, err := c.GetKey(ctx, std.ID)
	require.NoError(t, err)
	raw, err := base64.StdEncoding.DecodeString(gotStd.Payload)
	require.NoError(t, err)
	require.Len(t, raw, 32)

	keys, err := c.GetKeys(ctx, 0, 0)
	require.NoError(t, err)
	require.Equal(t, 3, keys.Metadata.NumberOfKeys)
	require.Len(t, keys.Keys, 3)
	page, err := c.GetKeys(ctx, 2, 1)
	require.NoError(t, err)
	require.Len(t, page.Keys, 2)
	require.Equal(t, imported.ID, page.Keys[0].ID)

	rootOnly := false
	lk, err := c.ListKeys(ctx, &kp.ListKeysOptions{Extractable: &rootOnly})
	require.NoError(t, err)
	require.Len(t, lk.Keys, 2)

	// Delete: GET shows state 5, actions are 410, purge waits 4 hours.
	_, err = c.DeleteKey(ctx, imported.ID, kp.ReturnMinimal)
	require.NoError(t, err)
	del, err := c.GetKey(ctx, imported.ID)
	require.NoError(t, err)
	require.Equal(t, 5, del.State)
	require.NotNil(t, del.Deleted)
	require.True(t, *del.Deleted)
	_, _, err = c.WrapCreateDEK(ctx, imported.ID, nil)
	e := kpErr(t, err)
	require.Equal(t, http.StatusGone, e.StatusCode)
	require.Equal(t, "KEY_DELETED_ERR", reasonCode(e))
	lk, err = c.ListKeys(ctx, &kp.ListKeysOptions{State: []kp.KeyState{kp.Destroyed}})
	require.NoError(t, err)
	require.Len(t, lk.Keys, 1)

	_, err = c.PurgeKey(ctx, imported.ID, kp.ReturnMinimal)
	require.Equal(t, http.StatusConflict, kpErr(t, err).StatusCode)
	f.clock.Advance(kmssim.PurgeWait)
	_, err = c.PurgeKey(ctx, imported.ID, kp.ReturnMinimal)
	require.NoError(t, err)
	_, err = c.GetKey(ctx, imported.ID)
	require.Equal(t, http.StatusNotFound, kpErr(t, err).StatusCode)
	_, ok := f.kms.LookupCRN(imported.CRN)
	require.False(t, ok)
	info, ok := f.kms.LookupCRN(root.CRN)
	require.True(t, ok)
	require.Equal(t, root.ID, info.ID)
}

func TestWrapUnwrapRotate(t *testing.T) {
	f := newFixture(t, kmssim.ServiceKeyProtect)
	c := f.client(t, ownerKey, instance)
	ctx := context.Background()
	root, err := c.CreateRootKey(ctx, "root", nil)
	require.NoError(t, err)

	dek := make([]byte, 64)
	_, _ = rand.Read(dek)
	res, err := c.WrapV2(ctx, root.ID, b64(dek), nil)
	require.NoError(t, err)
	require.NotEmpty(t, res.CipherText)
	require.Empty(t, res.PlainText, "no plaintext echoed when supplied")
	require.Equal(t, root.KeyVersion.ID, res.KeyVersion.ID)

	pt, rewrapped, err := c.UnwrapV2(ctx, root.ID, []byte(res.CipherText), nil)
	require.NoError(t, err)
	require.Equal(t, string(b64(dek)), string(pt))
	require.Empty(t, rewrapped, "no rotation yet")

	// Generated DEK.
	gen, wrapped, err := c.WrapCreateDEK(ctx, root.ID, nil)
	require.NoError(t, err)
	rawGen, err := base64.StdEncoding.DecodeString(string(gen))
	require.NoError(t, err)
	require.Len(t, rawGen, kmssim.DEKSize)
	pt, _, err = c.UnwrapV2(ctx, root.ID, wrapped, nil)
	require.NoError(t, err)
	require.Equal(t, gen, pt)

	// AAD is bound.
	aad := []string{"image:ubuntu", "v1"}
	ct, err := c.Wrap(ctx, root.ID, b64(dek), &aad)
	require.NoError(t, err)
	_, _, err = c.UnwrapV2(ctx, root.ID, ct, nil)
	e := kpErr(t, err)
	require.Equal(t, http.StatusUnprocessableEntity, e.StatusCode)
	require.Equal(t, "UNPROCESSABLE_CIPHERTEXT_ERR", reasonCode(e))
	other := []string{"image:ubuntu", "v2"}
	_, _, err = c.UnwrapV2(ctx, root.ID, ct, &other)
	require.Equal(t, http.StatusUnprocessableEntity, kpErr(t, err).StatusCode)
	pt, _, err = c.UnwrapV2(ctx, root.ID, ct, &aad)
	require.NoError(t, err)
	require.Equal(t, b64(dek), pt)

	// Rotation: old ciphertexts still unwrap and come back rewrapped.
	require.NoError(t, c.Rotate(ctx, root.ID, ""))
	rotated, err := c.GetKey(ctx, root.ID)
	require.NoError(t, err)
	require.NotEqual(t, root.KeyVersion.ID, rotated.KeyVersion.ID)
	require.NotNil(t, rotated.LastRotateDate)
	pt, rewrapped, err = c.UnwrapV2(ctx, root.ID, []byte(res.CipherText), nil)
	require.NoError(t, err)
	require.Equal(t, b64(dek), pt)
	require.NotEmpty(t, rewrapped)
	require.NotEqual(t, res.CipherText, string(rewrapped))
	pt, again, err := c.UnwrapV2(ctx, root.ID, rewrapped, nil)
	require.NoError(t, err)
	require.Equal(t, b64(dek), pt)
	require.Empty(t, again, "already under the newest version")
	res2, err := c.WrapV2(ctx, root.ID, b64(dek), nil)
	require.NoError(t, err)
	require.Equal(t, rotated.KeyVersion.ID, res2.KeyVersion.ID)

	// Another key cannot unwrap it; nor can garbage.
	root2, err := c.CreateRootKey(ctx, "root-2", nil)
	require.NoError(t, err)
	_, _, err = c.UnwrapV2(ctx, root2.ID, []byte(res.CipherText), nil)
	require.Equal(t, http.StatusUnprocessableEntity, kpErr(t, err).StatusCode)
	_, _, err = c.UnwrapV2(ctx, root.ID, []byte("bm90IGEgY2lwaGVydGV4dA=="), nil)
	require.Equal(t, http.StatusUnprocessableEntity, kpErr(t, err).StatusCode)
	// Tamper with one byte of the sealed data.
	raw, _ := base64.StdEncoding.DecodeString(res2.CipherText)
	i := bytes.Index(raw, []byte(`"ciphertext":"`)) + len(`"ciphertext":"`)
	if raw[i] == 'A' {
		raw[i] = 'B'
	} else {
		raw[i] = 'A'
	}
	_, _, err = c.UnwrapV2(ctx, root.ID, b64(raw), nil)
	require.Equal(t, http.StatusUnprocessableEntity, kpErr(t, err).StatusCode)

	// Standard keys cannot wrap.
	std, err := c.CreateKeyWithOptions(ctx, "std", true)
	require.NoError(t, err)
	_, err = c.Wrap(ctx, std.ID, b64(dek), nil)
	e = kpErr(t, err)
	require.Equal(t, http.StatusBadRequest, e.StatusCode)
	require.Equal(t, "KEY_ROOT_REQ_ERR", reasonCode(e))

	// Imported keys rotate only with a new payload.
	mat := make([]byte, 32)
	_, _ = rand.Read(mat)
	imp, err := c.CreateImportedRootKey(ctx, "imp", nil, base64.StdEncoding.EncodeToString(mat), "", "")
	require.NoError(t, err)
	err = c.Rotate(ctx, imp.ID, "")
	require.Equal(t, "KEY_PAYLOAD_REQ_ERR", reasonCode(kpErr(t, err)))
	_, _ = rand.Read(mat)
	require.NoError(t, c.Rotate(ctx, imp.ID, base64.StdEncoding.EncodeToString(mat)))
}

func TestDisableEnable(t *testing.T) {
	f := newFixture(t, kmssim.ServiceHPCS)
	c := f.client(t, ownerKey, instance)
	ctx := context.Background()
	root, err := c.CreateRootKey(ctx, "root", nil)
	require.NoError(t, err)
	require.Contains(t, root.CRN, ":hs-crypto:")
	ct, err := c.Wrap(ctx, root.ID, b64(make([]byte, 32)), nil)
	require.NoError(t, err)

	err = c.EnableKey(ctx, root.ID)
	require.Equal(t, http.StatusConflict, kpErr(t, err).StatusCode, "enable needs a suspended key")
	require.NoError(t, c.DisableKey(ctx, root.ID))
	k, err := c.GetKey(ctx, root.ID)
	require.NoError(t, err)
	require.Equal(t, 2, k.State)
	_, err = c.Wrap(ctx, root.ID, b64(make([]byte, 32)), nil)
	e := kpErr(t, err)
	require.Equal(t, http.StatusConflict, e.StatusCode)
	require.Equal(t, "KEY_ACTION_INVALID_STATE_ERR", reasonCode(e))
	_, _, err = c.UnwrapV2(ctx, root.ID, ct, nil)
	require.Equal(t, http.StatusConflict, kpErr(t, err).StatusCode)
	require.NoError(t, c.EnableKey(ctx, root.ID))
	_, _, err = c.UnwrapV2(ctx, root.ID, ct, nil)
	require.NoError(t, err)
}

func TestExpiredKeyUnwrapsButDoesNotWrap(t *testing.T) {
	f := newFixture(t, kmssim.ServiceKeyProtect)
	c := f.client(t, ownerKey, instance)
	ctx := context.Background()
	exp := f.clock.Now().Add(time.Hour)
	root, err := c.CreateRootKey(ctx, "expiring", &exp)
	require.NoError(t, err)
	ct, err := c.Wrap(ctx, root.ID, b64(make([]byte, 32)), nil)
	require.NoError(t, err)
	f.clock.Advance(2 * time.Hour)
	k, err := c.GetKey(ctx, root.ID)
	require.NoError(t, err)
	require.Equal(t, 3, k.State)
	_, err = c.Wrap(ctx, root.ID, b64(make([]byte, 32)), nil)
	require.Equal(t, "KEY_EXPIRED_ERR", reasonCode(kpErr(t, err)))
	_, _, err = c.UnwrapV2(ctx, root.ID, ct, nil)
	require.NoError(t, err)
}

func TestInstanceAndAccessChecks(t *testing.T) {
	f := newFixture(t, kmssim.ServiceKeyProtect)
	ctx := context.Background()
	root, err := f.kms.CreateRootKey("seeded")
	require.NoError(t, err)

	// Wrong instance GUID: 401 as for a caller without access.
	_, err = f.client(t, ownerKey, "99999999-2222-4333-8444-555555555555").GetKey(ctx, root.ID)
	e := kpErr(t, err)
	require.Equal(t, http.StatusUnauthorized, e.StatusCode)
	require.Equal(t, "UNAUTHORIZED_ERR", reasonCode(e))

	// Missing header: 400.
	tok, _, err := f.iam.IssueToken(ownerKey)
	require.NoError(t, err)
	req, _ := http.NewRequest(http.MethodGet, f.kmsURL+"/api/v2/keys", nil)
	req.Header.Set("authorization", "Bearer "+tok)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.Equal(t, http.StatusBadRequest, resp.StatusCode)
	require.Contains(t, string(body), "application/vnd.ibm.kms.error+json")

	// No token: 401.
	req, _ = http.NewRequest(http.MethodGet, f.kmsURL+"/api/v2/keys", nil)
	req.Header.Set("bluemix-instance", instance)
	resp, err = http.DefaultClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusUnauthorized, resp.StatusCode)

	// A service ID needs an access policy on the instance.
	_, sidIAM := f.iam.CreateServiceID("importer")
	sidKey := f.iam.CreateAPIKey(sidIAM, "k")
	svc := f.client(t, sidKey, instance)
	_, _, err = svc.WrapCreateDEK(ctx, root.ID, nil)
	require.Equal(t, http.StatusUnauthorized, kpErr(t, err).StatusCode)
	f.iam.AddAccess(sidIAM, "kms", "some-other-instance", iamsim.RoleReader)
	_, _, err = svc.WrapCreateDEK(ctx, root.ID, nil)
	require.Equal(t, http.StatusUnauthorized, kpErr(t, err).StatusCode)
	f.iam.AddAccess(sidIAM, "kms", instance, iamsim.RoleReader)
	_, wrapped, err := svc.WrapCreateDEK(ctx, root.ID, nil)
	require.NoError(t, err)

	// In-process unwrap as the service ID records an event.
	p, ok := f.iam.LookupAPIKey(sidKey)
	require.True(t, ok)
	pt, err := f.kms.UnwrapAs(p, root.ID, string(wrapped), nil)
	require.NoError(t, err)
	require.Len(t, pt, 32)
	_, err = f.kms.UnwrapAs(p, root.ID, "garbage", nil)
	st, code := kmssim.StatusOf(err)
	require.Equal(t, http.StatusUnprocessableEntity, st)
	require.Equal(t, "UNPROCESSABLE_CIPHERTEXT_ERR", code)
	http.DefaultClient.CloseIdleConnections()
}

func TestEventsForActions(t *testing.T) {
	f := newFixture(t, kmssim.ServiceKeyProtect)
	c := f.client(t, ownerKey, instance)
	ctx := context.Background()
	root, err := c.CreateRootKey(ctx, "root", nil)
	require.NoError(t, err)
	_, ct, err := c.WrapCreateDEK(ctx, root.ID, nil)
	require.NoError(t, err)
	_, _, err = c.UnwrapV2(ctx, root.ID, ct, nil)
	require.NoError(t, err)
	_, _, err = c.UnwrapV2(ctx, root.ID, []byte("eA=="), nil)
	require.Error(t, err)

	wraps := f.events.Find(atsim.Filter{Action: "kms.secrets.wrap"})
	require.Len(t, wraps, 1)
	w := wraps[0]
	require.Equal(t, root.CRN, w.Target.ID)
	require.Equal(t, simcore.OutcomeSuccess, w.Outcome)
	require.Equal(t, f.iam.Owner().IAMID, w.Initiator.ID)
	require.Equal(t, kmssim.StateActive, w.ResponseData["keyState"])
	require.Equal(t, root.KeyVersion.ID, w.ResponseData["keyVersionId"])
	require.Equal(t, instance, w.RequestData["instanceID"])
	require.NotEmpty(t, w.CorrelationID)
	require.True(t, strings.HasPrefix(w.LogSourceCRN, "crn:v1:bluemix:public:kms:us-south:a/"+acct))

	unwraps := f.events.Find(atsim.Filter{Action: "kms.secrets.unwrap"})
	require.Len(t, unwraps, 2)
	require.Equal(t, simcore.OutcomeSuccess, unwraps[0].Outcome)
	require.Equal(t, simcore.OutcomeFailure, unwraps[1].Outcome)
	require.Equal(t, http.StatusUnprocessableEntity, unwraps[1].Reason.ReasonCode)
	require.Len(t, f.events.Find(atsim.Filter{Action: "kms.secrets.create"}), 1)
}

func TestLegacyQueryActionAndEmptyBody(t *testing.T) {
	f := newFixture(t, kmssim.ServiceKeyProtect)
	root, err := f.kms.CreateRootKey("seeded")
	require.NoError(t, err)
	tok, _, err := f.iam.IssueToken(ownerKey)
	require.NoError(t, err)
	do := func(path, body string) (int, string) {
		req, _ := http.NewRequest(http.MethodPost, f.kmsURL+path, strings.NewReader(body))
		req.Header.Set("authorization", "Bearer "+tok)
		req.Header.Set("bluemix-instance", instance)
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	code, body := do("/api/v2/keys/"+root.ID+"?action=wrap", "")
	require.Equal(t, 200, code, body)
	require.Contains(t, body, `"plaintext"`)
	require.Contains(t, body, `"ciphertext"`)
	code, body = do("/api/v2/keys/"+root.ID+"/actions/wrap", "{}")
	require.Equal(t, 200, code, body)
	code, body = do("/api/v2/keys/"+root.ID+"/actions/wrap", "{not json")
	require.Equal(t, 400, code, body)
	require.Contains(t, body, "BAD_BODY_ERR")
	code, _ = do("/api/v2/keys/"+root.ID+"/actions/frobnicate", "{}")
	require.Equal(t, 400, code)
	code, _ = do("/api/v2/keys/"+root.ID+"/actions/setKeyForDeletion", "{}")
	require.Equal(t, 501, code)
	code, _ = do("/api/v2/keys/"+root.ID+"/actions/wrap", `{"aad":["`+strings.Repeat("a", 256)+`"]}`)
	require.Equal(t, 400, code)
	http.DefaultClient.CloseIdleConnections()
}

func TestRegisteredKeyNeedsForceToDelete(t *testing.T) {
	f := newFixture(t, kmssim.ServiceKeyProtect)
	c := f.client(t, ownerKey, instance)
	ctx := context.Background()
	root, err := f.kms.CreateRootKey("bucket-key")
	require.NoError(t, err)
	require.NoError(t, f.kms.Register(root.ID, "crn:v1:bluemix:public:cloud-object-storage:global:a/x:y:bucket:b"))
	_, err = c.DeleteKey(ctx, root.ID, kp.ReturnMinimal)
	require.Equal(t, "PROTECTED_RESOURCE_ERR", reasonCode(kpErr(t, err)))
	k, err := c.DeleteKey(ctx, root.ID, kp.ReturnRepresentation, kp.ForceOpt{Force: true})
	require.NoError(t, err)
	require.Equal(t, 5, k.State)
	restored, err := c.RestoreKey(ctx, root.ID)
	require.NoError(t, err)
	require.Equal(t, 1, restored.State)
}

func TestNewValidatesConfig(t *testing.T) {
	iam, err := iamsim.New(iamsim.Config{AccountID: acct, OwnerAPIKey: ownerKey})
	require.NoError(t, err)
	for _, cfg := range []kmssim.Config{
		{InstanceID: instance, Identity: iam, Authz: iam},
		{AccountID: acct, Identity: iam, Authz: iam},
		{AccountID: acct, InstanceID: instance},
		{ServiceName: "vault", AccountID: acct, InstanceID: instance, Identity: iam, Authz: iam},
	} {
		_, err := kmssim.New(cfg)
		require.Error(t, err)
	}
}
