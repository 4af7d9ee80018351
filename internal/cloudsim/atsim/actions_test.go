package atsim_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/e2eimage/e2eimage/internal/cloudsim/atsim"
	"github.com/e2eimage/e2eimage/internal/cloudsim/iamsim"
	"github.com/e2eimage/e2eimage/internal/cloudsim/simcore"
	"github.com/e2eimage/e2eimage/internal/cloudsim/slsim"
)

// Every catalogued action says where IBM documents it or what is invented
// about it; a name with no documentation is invented as a whole.
func TestActionCatalogue(t *testing.T) {
	t.Parallel()
	names := atsim.ActionNames()
	require.Len(t, names, len(atsim.Actions))
	for _, a := range names {
		p := atsim.Actions[a]
		require.True(t, p.Documented != "" || p.Invented != "", "%s has no provenance", a)
		if p.Documented == "" {
			require.True(t, strings.HasPrefix(p.Invented, "the whole name"), "%s: an undocumented name is invented as a whole", a)
		}
	}
	// The classic actions slsim records are catalogued, and the only image
	// action IBM lists is marked as recorded for imports by invention.
	for _, a := range []string{slsim.ActionTemplateCreate, slsim.ActionTemplateExport, slsim.ActionTemplateDelete, slsim.ActionProvision,
		slsim.ActionBoot, slsim.ActionPowerOn, slsim.ActionPowerOff, slsim.ActionReboot, slsim.ActionReclaim} {
		_, ok := atsim.Actions[a]
		require.True(t, ok, a)
	}
	create := atsim.Actions[slsim.ActionTemplateCreate]
	require.NotEmpty(t, create.Documented)
	require.Contains(t, create.Invented, "import")
	require.Empty(t, atsim.Actions[slsim.ActionProvision].Invented)
	require.Empty(t, atsim.Actions["kms.secrets.wrap"].Invented)

	// The store counts what the catalogue does not list.
	s := atsim.NewStore(0)
	s.Record(simcore.Event{Action: "kms.secrets.wrap"})
	s.Record(simcore.Event{Action: "audit-log.vsi-image-template.import"})
	s.Record(simcore.Event{Action: "audit-log.vsi-image-template.import"})
	require.Equal(t, map[string]int{"audit-log.vsi-image-template.import": 2}, s.Uncatalogued())
}

// The simulated IAM records catalogued actions only.
func TestIAMActionsAreCatalogued(t *testing.T) {
	t.Parallel()
	const acct, ownerKey = "0123456789abcdef0123456789abcdef", "owner-api-key-0123456789abcdef0123456789"
	store := atsim.NewStore(0)
	iam, err := iamsim.New(iamsim.Config{AccountID: acct, OwnerAPIKey: ownerKey, Events: store})
	require.NoError(t, err)
	srv := httptest.NewServer(iam.Handler())
	defer srv.Close()
	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	hc := &http.Client{Transport: tr}

	tok, _, err := iam.IssueToken(ownerKey)
	require.NoError(t, err)
	call := func(method, path string, body any, want int) map[string]any {
		t.Helper()
		var rd *bytes.Reader
		if body != nil {
			b, err := json.Marshal(body)
			require.NoError(t, err)
			rd = bytes.NewReader(b)
		} else {
			rd = bytes.NewReader(nil)
		}
		req, err := http.NewRequest(method, srv.URL+path, rd)
		require.NoError(t, err)
		req.Header.Set("Authorization", "Bearer "+tok)
		req.Header.Set("Content-Type", "application/json")
		resp, err := hc.Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		var out map[string]any
		_ = json.NewDecoder(resp.Body).Decode(&out)
		require.Equal(t, want, resp.StatusCode, "%s %s: %v", method, path, out)
		return out
	}
	sid := call(http.MethodPost, "/v1/serviceids/", map[string]any{"account_id": acct, "name": "catalogue"}, http.StatusCreated)
	iamID, _ := sid["iam_id"].(string)
	key := call(http.MethodPost, "/v1/apikeys", map[string]any{"name": "catalogue-key", "iam_id": iamID}, http.StatusCreated)
	pol := call(http.MethodPost, "/v1/policies", map[string]any{
		"type":      "access",
		"subjects":  []any{map[string]any{"attributes": []any{map[string]any{"name": "iam_id", "value": iamID}}}},
		"roles":     []any{map[string]any{"role_id": "crn:v1:bluemix:public:iam::::role:Viewer"}},
		"resources": []any{map[string]any{"attributes": []any{map[string]any{"name": "accountId", "value": acct}, map[string]any{"name": "serviceName", "value": "kms"}}}},
	}, http.StatusCreated)
	call(http.MethodDelete, "/v1/policies/"+url.PathEscape(pol["id"].(string)), nil, http.StatusNoContent)
	call(http.MethodDelete, "/v1/apikeys/"+url.PathEscape(key["id"].(string)), nil, http.StatusNoContent)
	call(http.MethodDelete, "/v1/serviceids/"+url.PathEscape(sid["id"].(string)), nil, http.StatusNoContent)

	require.Equal(t, 6, store.Len(), "every call recorded an event")
	require.Empty(t, store.Uncatalogued())
}
