package iamsim_test

import (
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/IBM/go-sdk-core/v5/core"
	"github.com/IBM/platform-services-go-sdk/iamidentityv1"
	"github.com/IBM/platform-services-go-sdk/iampolicymanagementv1"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/e2eimage/e2eimage/internal/cloudsim/iamsim"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const (
	acct     = "0123456789abcdef0123456789abcdef"
	ownerKey = "owner-api-key-0123456789abcdef0123456789"
)

type fixture struct {
	iam  *iamsim.Server
	url  string
	auth *core.IamAuthenticator
	id   *iamidentityv1.IamIdentityV1
	pol  *iampolicymanagementv1.IamPolicyManagementV1
}

func newFixture(t *testing.T, cfg iamsim.Config) *fixture {
	t.Helper()
	cfg.AccountID, cfg.OwnerAPIKey = acct, ownerKey
	s, err := iamsim.New(cfg)
	require.NoError(t, err)
	srv := httptest.NewServer(s.Handler())
	t.Cleanup(srv.Close)
	tr := &http.Transport{}
	t.Cleanup(tr.CloseIdleConnections)
	auth, err := core.NewIamAuthenticatorBuilder().SetApiKey(ownerKey).SetURL(srv.URL).Build()
	require.NoError(t, err)
	auth.Client = &http.Client{Transport: tr}
	id, err := iamidentityv1.NewIamIdentityV1(&iamidentityv1.IamIdentityV1Options{URL: srv.URL, Authenticator: auth})
	require.NoError(t, err)
	id.Service.SetHTTPClient(&http.Client{Transport: tr})
	pol, err := iampolicymanagementv1.NewIamPolicyManagementV1(&iampolicymanagementv1.IamPolicyManagementV1Options{URL: srv.URL, Authenticator: auth})
	require.NoError(t, err)
	pol.Service.SetHTTPClient(&http.Client{Transport: tr})
	return &fixture{iam: s, url: srv.URL, auth: auth, id: id, pol: pol}
}

func TestTokenGrantThroughSDKAuthenticator(t *testing.T) {
	f := newFixture(t, iamsim.Config{})
	tok, err := f.auth.GetToken()
	require.NoError(t, err)
	parts := strings.Split(tok, ".")
	require.Len(t, parts, 3, "JWT shaped")
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	require.NoError(t, err)
	var c map[string]any
	require.NoError(t, json.Unmarshal(payload, &c))
	require.Equal(t, acct, c["account"].(map[string]any)["bss"])
	require.Equal(t, f.iam.Owner().IAMID, c["iam_id"])
	require.Greater(t, c["exp"].(float64), float64(time.Now().Unix()))

	p, ok := f.iam.LookupToken("Bearer " + tok)
	require.True(t, ok)
	require.Equal(t, f.iam.Owner().IAMID, p.IAMID)
	require.Equal(t, acct, p.AccountID)

	// A tampered token is refused.
	_, ok = f.iam.LookupToken(parts[0] + "." + parts[1] + "x." + parts[2])
	require.False(t, ok)
	_, ok = f.iam.LookupToken("not-a-token")
	require.False(t, ok)
}

func TestTokenResponseFieldsAndBadKey(t *testing.T) {
	f := newFixture(t, iamsim.Config{})
	post := func(form url.Values) (int, map[string]any) {
		resp, err := http.PostForm(f.url+"/identity/token", form)
		require.NoError(t, err)
		defer resp.Body.Close()
		var m map[string]any
		require.NoError(t, json.NewDecoder(resp.Body).Decode(&m))
		return resp.StatusCode, m
	}
	code, m := post(url.Values{"grant_type": {iamsim.GrantTypeAPIKey}, "apikey": {ownerKey}})
	require.Equal(t, 200, code)
	require.Equal(t, "Bearer", m["token_type"])
	require.Equal(t, "not_supported", m["refresh_token"])
	require.EqualValues(t, 3600, m["expires_in"])
	require.InDelta(t, time.Now().Add(time.Hour).Unix(), m["expiration"], 5)
	require.NotEmpty(t, m["scope"])
	require.NotEmpty(t, m["ims_user_id"])

	code, m = post(url.Values{"grant_type": {iamsim.GrantTypeAPIKey}, "apikey": {"wrong"}})
	require.Equal(t, 400, code)
	require.Equal(t, "BXNIM0415E", m["errorCode"])
	require.Equal(t, "Provided API key could not be found.", m["errorMessage"])
	require.NotEmpty(t, m["context"].(map[string]any)["requestId"])

	code, m = post(url.Values{"apikey": {ownerKey}})
	require.Equal(t, 400, code)
	require.Equal(t, "BXNIM0109E", m["errorCode"])

	// The legacy path takes the same grant.
	resp, err := http.PostForm(f.url+"/oidc/token", url.Values{"grant_type": {iamsim.GrantTypeAPIKey}, "apikey": {ownerKey}})
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, 200, resp.StatusCode)
}

func TestTokenExpiresInRealTime(t *testing.T) {
	f := newFixture(t, iamsim.Config{TokenLifetime: time.Second})
	tok, _, err := f.iam.IssueToken(ownerKey)
	require.NoError(t, err)
	_, ok := f.iam.LookupToken(tok)
	require.True(t, ok)
	require.Eventually(t, func() bool { _, ok := f.iam.LookupToken(tok); return !ok }, 3*time.Second, 50*time.Millisecond)
}

func TestRequestsNeedAToken(t *testing.T) {
	f := newFixture(t, iamsim.Config{})
	for _, p := range []string{"/v1/serviceids/", "/v1/apikeys", "/v1/policies?account_id=" + acct} {
		resp, err := http.Get(f.url + p)
		require.NoError(t, err)
		resp.Body.Close()
		require.Equal(t, http.StatusUnauthorized, resp.StatusCode, p)
		req, _ := http.NewRequest(http.MethodGet, f.url+p, nil)
		req.Header.Set("Authorization", "Bearer forged.token.value")
		resp, err = http.DefaultClient.Do(req)
		require.NoError(t, err)
		resp.Body.Close()
		require.Equal(t, http.StatusUnauthorized, resp.StatusCode, p)
	}
	http.DefaultClient.CloseIdleConnections()
}

func TestServiceIDsAndAPIKeysThroughSDK(t *testing.T) {
	f := newFixture(t, iamsim.Config{})
	sid, resp, err := f.id.CreateServiceID(f.id.NewCreateServiceIDOptions(acct, "e2e-importer").SetDescription("imports images"))
	require.NoError(t, err)
	require.Equal(t, http.StatusCreated, resp.StatusCode)
	require.True(t, strings.HasPrefix(*sid.ID, "ServiceId-"))
	require.Equal(t, "iam-"+*sid.ID, *sid.IamID)
	require.Equal(t, acct, *sid.AccountID)
	require.Contains(t, *sid.CRN, "a/"+acct)
	require.NotNil(t, sid.CreatedAt)

	key, resp, err := f.id.CreateAPIKey(f.id.NewCreateAPIKeyOptions("importer-key", *sid.IamID).SetAccountID(acct))
	require.NoError(t, err)
	require.Equal(t, http.StatusCreated, resp.StatusCode)
	require.NotEmpty(t, *key.Apikey)
	require.Equal(t, *sid.IamID, *key.IamID)

	// The new key works for the token grant, with the service ID as principal.
	p, ok := f.iam.LookupAPIKey(*key.Apikey)
	require.True(t, ok)
	require.Equal(t, *sid.IamID, p.IAMID)
	tok, _, err := f.iam.IssueToken(*key.Apikey)
	require.NoError(t, err)
	p, ok = f.iam.LookupToken(tok)
	require.True(t, ok)
	require.Equal(t, *sid.IamID, p.IAMID)
	require.Equal(t, "e2e-importer", p.Name)

	// Get does not reveal the value.
	got, _, err := f.id.GetAPIKey(f.id.NewGetAPIKeyOptions(*key.ID))
	require.NoError(t, err)
	require.Empty(t, *got.Apikey)
	require.Equal(t, "importer-key", *got.Name)

	keys, _, err := f.id.ListAPIKeys(f.id.NewListAPIKeysOptions().SetAccountID(acct).SetIamID(*sid.IamID))
	require.NoError(t, err)
	require.Len(t, keys.Apikeys, 1)
	require.Equal(t, *key.ID, *keys.Apikeys[0].ID)

	list, _, err := f.id.ListServiceIds(f.id.NewListServiceIdsOptions().SetAccountID(acct).SetName("e2e-importer"))
	require.NoError(t, err)
	require.Len(t, list.Serviceids, 1)
	list, _, err = f.id.ListServiceIds(f.id.NewListServiceIdsOptions().SetAccountID(acct).SetName("nope"))
	require.NoError(t, err)
	require.Empty(t, list.Serviceids)

	gs, _, err := f.id.GetServiceID(f.id.NewGetServiceIDOptions(*sid.ID))
	require.NoError(t, err)
	require.Equal(t, "imports images", *gs.Description)

	// A service ID without IAM rights cannot create service IDs.
	svcAuth, err := core.NewIamAuthenticatorBuilder().SetApiKey(*key.Apikey).SetURL(f.url).Build()
	require.NoError(t, err)
	svcClient, err := iamidentityv1.NewIamIdentityV1(&iamidentityv1.IamIdentityV1Options{URL: f.url, Authenticator: svcAuth})
	require.NoError(t, err)
	_, resp, err = svcClient.CreateServiceID(svcClient.NewCreateServiceIDOptions(acct, "x"))
	require.Error(t, err)
	require.Equal(t, http.StatusForbidden, resp.StatusCode)

	// Deleting the service ID deletes its keys.
	resp, err = f.id.DeleteServiceID(f.id.NewDeleteServiceIDOptions(*sid.ID))
	require.NoError(t, err)
	require.Equal(t, http.StatusNoContent, resp.StatusCode)
	_, ok = f.iam.LookupAPIKey(*key.Apikey)
	require.False(t, ok)
	_, resp, err = f.id.GetServiceID(f.id.NewGetServiceIDOptions(*sid.ID))
	require.Error(t, err)
	require.Equal(t, http.StatusNotFound, resp.StatusCode)
}

func TestCreateServiceIDWithInlineKeyAndDeleteKey(t *testing.T) {
	f := newFixture(t, iamsim.Config{})
	opts := f.id.NewCreateServiceIDOptions(acct, "with-key")
	opts.SetApikey(&iamidentityv1.APIKeyInsideCreateServiceIDRequest{Name: core.StringPtr("inline")})
	sid, _, err := f.id.CreateServiceID(opts)
	require.NoError(t, err)
	require.NotNil(t, sid.Apikey)
	require.NotEmpty(t, *sid.Apikey.Apikey)
	_, ok := f.iam.LookupAPIKey(*sid.Apikey.Apikey)
	require.True(t, ok)
	resp, err := f.id.DeleteAPIKey(f.id.NewDeleteAPIKeyOptions(*sid.Apikey.ID))
	require.NoError(t, err)
	require.Equal(t, http.StatusNoContent, resp.StatusCode)
	_, ok = f.iam.LookupAPIKey(*sid.Apikey.Apikey)
	require.False(t, ok)
}

func authzPolicy(f *fixture, source, target string) *iampolicymanagementv1.CreatePolicyOptions {
	return f.pol.NewCreatePolicyOptions("authorization",
		[]iampolicymanagementv1.PolicySubject{{Attributes: []iampolicymanagementv1.SubjectAttribute{
			{Name: core.StringPtr("accountId"), Value: core.StringPtr(acct)},
			{Name: core.StringPtr("serviceName"), Value: core.StringPtr(source)},
		}}},
		[]iampolicymanagementv1.PolicyRole{{RoleID: core.StringPtr(iamsim.RoleReader)}},
		[]iampolicymanagementv1.PolicyResource{{Attributes: []iampolicymanagementv1.ResourceAttribute{
			{Name: core.StringPtr("accountId"), Value: core.StringPtr(acct), Operator: core.StringPtr("stringEquals")},
			{Name: core.StringPtr("serviceName"), Value: core.StringPtr(target), Operator: core.StringPtr("stringEquals")},
		}}})
}

func TestPoliciesThroughSDK(t *testing.T) {
	f := newFixture(t, iamsim.Config{})
	require.False(t, f.iam.HasAuthorization(acct, "server-protect", "kms", "inst"))

	pol, resp, err := f.pol.CreatePolicy(authzPolicy(f, "server-protect", "kms"))
	require.NoError(t, err)
	require.Equal(t, http.StatusCreated, resp.StatusCode)
	require.NotEmpty(t, *pol.ID)
	require.Equal(t, "authorization", *pol.Type)
	require.Equal(t, "Reader", *pol.Roles[0].DisplayName)
	require.NotEmpty(t, resp.Headers.Get("ETag"))
	require.True(t, f.iam.HasAuthorization(acct, "server-protect", "kms", "inst"))
	require.False(t, f.iam.HasAuthorization(acct, "server-protect", "hs-crypto", "inst"))
	require.False(t, f.iam.HasAuthorization("other", "server-protect", "kms", "inst"))

	// A duplicate is a 409 naming the conflicting policy.
	_, resp, err = f.pol.CreatePolicy(authzPolicy(f, "server-protect", "kms"))
	require.Error(t, err)
	require.Equal(t, http.StatusConflict, resp.StatusCode)
	body, _ := json.Marshal(resp.Result)
	var env struct {
		Errors []iampolicymanagementv1.ErrorObject `json:"errors"`
	}
	require.NoError(t, json.Unmarshal(body, &env))
	require.Equal(t, "policy_conflict_error", *env.Errors[0].Code)
	require.Equal(t, *pol.ID, *env.Errors[0].Details.ConflictsWith.Policy)
	require.Equal(t, resp.Headers.Get("ETag"), "")
	require.NotEmpty(t, *env.Errors[0].Details.ConflictsWith.Etag)

	// An access policy for a service ID, scoped to an instance.
	sidID, sidIAM := f.iam.CreateServiceID("importer")
	require.NotEmpty(t, sidID)
	access := f.pol.NewCreatePolicyOptions("access",
		[]iampolicymanagementv1.PolicySubject{{Attributes: []iampolicymanagementv1.SubjectAttribute{
			{Name: core.StringPtr("iam_id"), Value: core.StringPtr(sidIAM)},
		}}},
		[]iampolicymanagementv1.PolicyRole{{RoleID: core.StringPtr("crn:v1:bluemix:public:iam::::serviceRole:Writer")}},
		[]iampolicymanagementv1.PolicyResource{{Attributes: []iampolicymanagementv1.ResourceAttribute{
			{Name: core.StringPtr("accountId"), Value: core.StringPtr(acct)},
			{Name: core.StringPtr("serviceName"), Value: core.StringPtr("cloud-object-storage")},
			{Name: core.StringPtr("serviceInstance"), Value: core.StringPtr("cos-guid")},
			{Name: core.StringPtr("resourceType"), Value: core.StringPtr("bucket")},
			{Name: core.StringPtr("resource"), Value: core.StringPtr("images")},
		}}})
	ap, _, err := f.pol.CreatePolicy(access)
	require.NoError(t, err)
	require.True(t, f.iam.HasAccess(acct, sidIAM, "cloud-object-storage", "cos-guid"))
	require.False(t, f.iam.HasAccess(acct, sidIAM, "cloud-object-storage", "other-guid"))
	require.False(t, f.iam.HasAccess(acct, sidIAM, "kms", ""))
	require.True(t, f.iam.HasResourceAccess(acct, sidIAM, "cloud-object-storage", "cos-guid", "bucket", "images"))
	require.False(t, f.iam.HasResourceAccess(acct, sidIAM, "cloud-object-storage", "cos-guid", "bucket", "other"))
	require.True(t, f.iam.HasAccess(acct, f.iam.Owner().IAMID, "kms", "anything"), "the owner can do everything")

	// Listing with filters.
	all, _, err := f.pol.ListPolicies(f.pol.NewListPoliciesOptions(acct))
	require.NoError(t, err)
	require.Len(t, all.Policies, 2)
	onlyAuthz, _, err := f.pol.ListPolicies(f.pol.NewListPoliciesOptions(acct).SetType("authorization"))
	require.NoError(t, err)
	require.Len(t, onlyAuthz.Policies, 1)
	require.Equal(t, *pol.ID, *onlyAuthz.Policies[0].ID)
	mine, _, err := f.pol.ListPolicies(f.pol.NewListPoliciesOptions(acct).SetIamID(sidIAM))
	require.NoError(t, err)
	require.Len(t, mine.Policies, 1)
	require.Equal(t, *ap.ID, *mine.Policies[0].ID)

	got, _, err := f.pol.GetPolicy(f.pol.NewGetPolicyOptions(*ap.ID))
	require.NoError(t, err)
	require.Equal(t, "access", *got.Type)

	resp, err = f.pol.DeletePolicy(f.pol.NewDeletePolicyOptions(*ap.ID))
	require.NoError(t, err)
	require.Equal(t, http.StatusNoContent, resp.StatusCode)
	require.False(t, f.iam.HasAccess(acct, sidIAM, "cloud-object-storage", "cos-guid"))
	_, resp, err = f.pol.GetPolicy(f.pol.NewGetPolicyOptions(*ap.ID))
	require.Error(t, err)
	require.Equal(t, http.StatusNotFound, resp.StatusCode)
}

func TestPolicyValidation(t *testing.T) {
	f := newFixture(t, iamsim.Config{})
	tok, _, err := f.iam.IssueToken(ownerKey)
	require.NoError(t, err)
	cases := map[string]string{
		"no subject service":  `{"type":"authorization","subjects":[{"attributes":[{"name":"accountId","value":"` + acct + `"}]}],"roles":[{"role_id":"` + iamsim.RoleReader + `"}],"resources":[{"attributes":[{"name":"accountId","value":"` + acct + `"},{"name":"serviceName","value":"kms"}]}]}`,
		"no subject account":  `{"type":"authorization","subjects":[{"attributes":[{"name":"serviceName","value":"server-protect"}]}],"roles":[{"role_id":"` + iamsim.RoleReader + `"}],"resources":[{"attributes":[{"name":"accountId","value":"` + acct + `"},{"name":"serviceName","value":"kms"}]}]}`,
		"no resource account": `{"type":"authorization","subjects":[{"attributes":[{"name":"accountId","value":"` + acct + `"},{"name":"serviceName","value":"server-protect"}]}],"roles":[{"role_id":"` + iamsim.RoleReader + `"}],"resources":[{"attributes":[{"name":"serviceName","value":"kms"}]}]}`,
		"no roles":            `{"type":"authorization","subjects":[{"attributes":[{"name":"accountId","value":"` + acct + `"},{"name":"serviceName","value":"server-protect"}]}],"roles":[],"resources":[{"attributes":[{"name":"accountId","value":"` + acct + `"},{"name":"serviceName","value":"kms"}]}]}`,
		"bad type":            `{"type":"bogus","subjects":[{"attributes":[{"name":"iam_id","value":"x"}]}],"roles":[{"role_id":"` + iamsim.RoleReader + `"}],"resources":[{"attributes":[{"name":"accountId","value":"` + acct + `"}]}]}`,
		"bad role":            `{"type":"access","subjects":[{"attributes":[{"name":"iam_id","value":"x"}]}],"roles":[{"role_id":"Reader"}],"resources":[{"attributes":[{"name":"accountId","value":"` + acct + `"}]}]}`,
		"access no iam":       `{"type":"access","subjects":[{"attributes":[{"name":"serviceName","value":"x"}]}],"roles":[{"role_id":"` + iamsim.RoleReader + `"}],"resources":[{"attributes":[{"name":"accountId","value":"` + acct + `"}]}]}`,
		"not json":            `{`,
		"wrong operator":      `{"type":"access","subjects":[{"attributes":[{"name":"iam_id","value":"x"}]}],"roles":[{"role_id":"` + iamsim.RoleReader + `"}],"resources":[{"attributes":[{"name":"accountId","value":"` + acct + `","operator":"stringMatch"}]}]}`,
	}
	for name, body := range cases {
		req, _ := http.NewRequest(http.MethodPost, f.url+"/v1/policies", strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+tok)
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		require.Equal(t, http.StatusBadRequest, resp.StatusCode, name+": "+string(b))
		require.Contains(t, string(b), `"errors"`, name)
	}
	// Another account's policy is refused.
	other := strings.ReplaceAll(`{"type":"access","subjects":[{"attributes":[{"name":"iam_id","value":"x"}]}],"roles":[{"role_id":"`+iamsim.RoleReader+`"}],"resources":[{"attributes":[{"name":"accountId","value":"ACCT"}]}]}`, "ACCT", "ffff")
	req, _ := http.NewRequest(http.MethodPost, f.url+"/v1/policies", strings.NewReader(other))
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusForbidden, resp.StatusCode)
	http.DefaultClient.CloseIdleConnections()
}

func TestSeedingHelpers(t *testing.T) {
	f := newFixture(t, iamsim.Config{})
	id := f.iam.AddAuthorization("cloud-object-storage", "kms", "kp-guid")
	require.True(t, f.iam.HasAuthorization(acct, "cloud-object-storage", "kms", "kp-guid"))
	require.True(t, f.iam.HasAuthorization(acct, "cloud-object-storage", "kms", ""))
	require.False(t, f.iam.HasAuthorization(acct, "cloud-object-storage", "kms", "other"))
	require.Equal(t, id, f.iam.AddAuthorization("cloud-object-storage", "kms", "kp-guid"), "idempotent")
	require.True(t, f.iam.RemovePolicy(id))
	require.False(t, f.iam.HasAuthorization(acct, "cloud-object-storage", "kms", "kp-guid"))

	_, sidIAM := f.iam.CreateServiceID("svc")
	key := f.iam.CreateAPIKey(sidIAM, "k")
	require.GreaterOrEqual(t, len(key), iamsim.MinAPIKeyLength)
	f.iam.AddAccess(sidIAM, "kms", "", iamsim.RoleReader)
	require.True(t, f.iam.HasAccess(acct, sidIAM, "kms", "any-instance"))
}

func TestNewValidatesConfig(t *testing.T) {
	_, err := iamsim.New(iamsim.Config{OwnerAPIKey: "k"})
	require.Error(t, err)
	_, err = iamsim.New(iamsim.Config{AccountID: "a"})
	require.Error(t, err)
}
