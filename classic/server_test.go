package classic

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/e2eimage/e2eimage/internal/endpoint"
	"github.com/e2eimage/e2eimage/secret"
)

func goodSpec() ServerSpec {
	return ServerSpec{
		Hostname: "e2e-test", Domain: "example.com", Datacenter: "dal13",
		CPUs: 2, MemoryMB: 4096, Template: TemplateRef{ID: 9}, NetworkSpeedMbps: 100,
		SSHKeyIDs: []int{5}, UserData: "#cloud-config\n",
	}
}

// serveOrdering makes f answer the ordering calls for a template in the
// given status; getObject of the guest reports provisioned after
// provisionAfter polls.
func serveOrdering(f *fakeSL, templateStatus string, provisionAfter int) {
	f.on("SoftLayer_Virtual_Guest_Block_Device_Template_Group::getObject", func(r fakeReq) (int, any) {
		return 200, map[string]any{"id": r.ID, "globalIdentifier": "tmpl-guid", "name": "img", "status": status(templateStatus, ""),
			"children": []any{child("dal13", "")}}
	})
	f.on("SoftLayer_Virtual_Guest::generateOrderTemplate", func(r fakeReq) (int, any) {
		var g map[string]any
		_ = json.Unmarshal(r.Params[0], &g)
		return 200, map[string]any{
			"complexType":                   "SoftLayer_Container_Product_Order_Virtual_Guest",
			"location":                      "1854895",
			"imageTemplateGlobalIdentifier": "tmpl-guid",
			"useHourlyPricing":              true,
			"virtualGuests":                 []any{map[string]any{"hostname": g["hostname"], "domain": g["domain"]}},
			"prices":                        []any{map[string]any{"id": 1, "item": map[string]any{"description": "2 x 2.0 GHz Cores"}}},
		}
	})
	f.on("SoftLayer_Product_Order::verifyOrder", func(r fakeReq) (int, any) {
		return 200, map[string]any{
			"location": "1854895", "postTaxRecurringHourly": "0.123", "postTaxSetup": 0,
			"prices": []any{map[string]any{"id": 1, "item": map[string]any{"description": "2 x 2.0 GHz Cores"}}},
		}
	})
	f.on("SoftLayer_Virtual_Guest::createObject", func(r fakeReq) (int, any) {
		return 200, map[string]any{"id": 555, "hostname": "e2e-test", "domain": "example.com", "globalIdentifier": "guest-guid"}
	})
	polls := 0
	f.on("SoftLayer_Virtual_Guest::getObject", func(r fakeReq) (int, any) {
		polls++
		g := map[string]any{"id": r.ID, "hostname": "e2e-test", "domain": "example.com",
			"fullyQualifiedDomainName": "e2e-test.example.com", "datacenter": map[string]any{"name": "dal13"},
			"blockDeviceTemplateGroup": map[string]any{"id": 10, "globalIdentifier": "child-guid"}}
		if polls <= provisionAfter {
			g["activeTransaction"] = tx("PROVISION_" + string(rune('A'+polls)))
			return 200, g
		}
		g["provisionDate"] = "2026-01-02T03:04:05-06:00"
		g["primaryIpAddress"] = "169.45.1.2"
		g["primaryBackendIpAddress"] = "10.0.0.2"
		return 200, g
	})
}

func TestOrderServerEndsProvisioned(t *testing.T) {
	t.Parallel()
	f := newFakeSL(t)
	serveOrdering(f, "ACTIVE", 3)
	c := newTestClient(t, f)
	var transactions []string
	srv, err := c.OrderServer(context.Background(), goodSpec(), ServerProgress(func(s Server) {
		transactions = append(transactions, s.Transaction)
	}))
	require.NoError(t, err)
	require.True(t, srv.Provisioned())
	require.Equal(t, 555, srv.ID)
	require.Equal(t, "e2e-test.example.com", srv.FQDN)
	require.Equal(t, "169.45.1.2", srv.PrimaryIP)
	require.Equal(t, "10.0.0.2", srv.BackendIP)
	require.Equal(t, "dal13", srv.Datacenter)
	require.Equal(t, 10, srv.TemplateID)
	require.Equal(t, []string{"PROVISION_B", "PROVISION_C", "PROVISION_D", ""}, transactions)

	// The order went through generateOrderTemplate and verifyOrder first.
	var ops []string
	for _, r := range f.requests() {
		ops = append(ops, r.Service+"::"+r.Method)
	}
	require.Equal(t, []string{
		"SoftLayer_Virtual_Guest_Block_Device_Template_Group::getObject",
		"SoftLayer_Virtual_Guest::generateOrderTemplate",
		"SoftLayer_Product_Order::verifyOrder",
		"SoftLayer_Virtual_Guest::createObject",
	}, ops[:4])

	reqs := f.requests()
	var order map[string]any
	require.NoError(t, json.Unmarshal(reqs[2].Params[0], &order))
	require.Equal(t, "SoftLayer_Container_Product_Order_Virtual_Guest", order["complexType"])
	require.Equal(t, "tmpl-guid", order["imageTemplateGlobalIdentifier"])

	var guest map[string]any
	require.NoError(t, json.Unmarshal(reqs[3].Params[0], &guest))
	require.Equal(t, "POST", reqs[3].HTTPMethod)
	require.Equal(t, map[string]any{"globalIdentifier": "tmpl-guid"}, guest["blockDeviceTemplateGroup"])
	require.Equal(t, true, guest["hourlyBillingFlag"])
	require.Equal(t, float64(2), guest["startCpus"])
	require.Equal(t, float64(4096), guest["maxMemory"])
	require.Equal(t, map[string]any{"name": "dal13"}, guest["datacenter"])
	require.Equal(t, []any{map[string]any{"maxSpeed": float64(100)}}, guest["networkComponents"])
	require.Equal(t, []any{map[string]any{"id": float64(5)}}, guest["sshKeys"])
	require.Equal(t, []any{map[string]any{"value": "#cloud-config\n"}}, guest["userData"])
	require.NotContains(t, guest, "operatingSystemReferenceCode", "conflicts with the template")
}

func TestOrderFromNonActiveTemplateFails(t *testing.T) {
	t.Parallel()
	for _, st := range []string{"PENDING", "ERROR"} {
		t.Run(st, func(t *testing.T) {
			f := newFakeSL(t)
			serveOrdering(f, st, 0)
			c := newTestClient(t, f)
			srv, err := c.OrderServer(context.Background(), goodSpec())
			require.Nil(t, srv)
			require.ErrorIs(t, err, ErrTemplateNotActive)
			require.Contains(t, strings.ToUpper(err.Error()), st)
			_, err = c.VerifyServer(context.Background(), goodSpec())
			require.ErrorIs(t, err, ErrTemplateNotActive)
			require.Zero(t, f.count("SoftLayer_Virtual_Guest::createObject"))
			require.Zero(t, f.count("SoftLayer_Virtual_Guest::generateOrderTemplate"))
		})
	}
}

func TestVerifyServerIsADryRun(t *testing.T) {
	t.Parallel()
	f := newFakeSL(t)
	serveOrdering(f, "ACTIVE", 0)
	c := newTestClient(t, f)
	q, err := c.VerifyServer(context.Background(), goodSpec())
	require.NoError(t, err)
	require.InDelta(t, 0.123, q.HourlyRecurring, 1e-9)
	require.Equal(t, "1854895", q.Location)
	require.Equal(t, 9, q.TemplateID)
	require.Equal(t, "tmpl-guid", q.TemplateGUID)
	require.Equal(t, []string{"2 x 2.0 GHz Cores"}, q.Items)
	require.Zero(t, f.count("SoftLayer_Virtual_Guest::createObject"))
	require.Zero(t, f.count("SoftLayer_Product_Order::placeOrder"))
}

func TestOrderByGlobalIdentifier(t *testing.T) {
	t.Parallel()
	f := newFakeSL(t)
	serveOrdering(f, "ACTIVE", 0)
	f.on("SoftLayer_Account::getPrivateBlockDeviceTemplateGroups", func(r fakeReq) (int, any) {
		return 200, []map[string]any{{"id": 9, "globalIdentifier": "tmpl-guid", "status": status("ACTIVE", ""), "children": []any{child("dal13", "")}}}
	})
	c := newTestClient(t, f)
	spec := goodSpec()
	spec.Template = TemplateRef{GlobalIdentifier: "tmpl-guid"}
	srv, err := c.CreateServer(context.Background(), spec)
	require.NoError(t, err)
	require.Equal(t, 555, srv.ID)
	require.False(t, srv.Provisioned())
	require.Equal(t, 9, srv.TemplateID)
	var flt map[string]map[string]map[string]any
	require.NoError(t, json.Unmarshal([]byte(f.requests()[0].Filter), &flt))
	require.Equal(t, "tmpl-guid", flt["privateBlockDeviceTemplateGroups"]["globalIdentifier"]["operation"])
}

func TestServerSpecValidation(t *testing.T) {
	t.Parallel()
	f := newFakeSL(t)
	c := newTestClient(t, f)
	cases := map[string]func(*ServerSpec){
		"Hostname":         func(s *ServerSpec) { s.Hostname = "bad_host" },
		"Domain":           func(s *ServerSpec) { s.Domain = "local" },
		"Datacenter":       func(s *ServerSpec) { s.Datacenter = "Dallas 13" },
		"CPUs":             func(s *ServerSpec) { s.CPUs = 0 },
		"MemoryMB":         func(s *ServerSpec) { s.MemoryMB = -1 },
		"Template":         func(s *ServerSpec) { s.Template = TemplateRef{} },
		"NetworkSpeedMbps": func(s *ServerSpec) { s.NetworkSpeedMbps = -10 },
	}
	for field, edit := range cases {
		spec := goodSpec()
		edit(&spec)
		_, err := c.CreateServer(context.Background(), spec)
		var se *InvalidServerError
		require.ErrorAs(t, err, &se, field)
		require.Equal(t, field, se.Field)
		require.ErrorIs(t, err, ErrInvalidServerSpec)
	}
	require.Empty(t, f.requests())
}

func TestCreateObjectFailureIsNotRetried(t *testing.T) {
	t.Parallel()
	f := newFakeSL(t)
	serveOrdering(f, "ACTIVE", 0)
	f.on("SoftLayer_Virtual_Guest::createObject", func(r fakeReq) (int, any) {
		return 503, slError("SoftLayer_Exception_Public", "try later")
	})
	c := newTestClient(t, f)
	_, err := c.CreateServer(context.Background(), goodSpec())
	var ae *APIError
	require.ErrorAs(t, err, &ae)
	require.Equal(t, 503, ae.StatusCode)
	require.Equal(t, 1, f.count("SoftLayer_Virtual_Guest::createObject"))
}

func TestFindServer(t *testing.T) {
	t.Parallel()
	f := newFakeSL(t)
	var answer []map[string]any
	f.on("SoftLayer_Account::getVirtualGuests", func(r fakeReq) (int, any) { return 200, answer })
	c := newTestClient(t, f)
	_, err := c.FindServer(context.Background(), "web", "example.com")
	require.ErrorIs(t, err, ErrNotFound)
	answer = []map[string]any{{"id": 3, "hostname": "web", "domain": "example.com", "provisionDate": "2026-01-02T03:04:05Z"}}
	srv, err := c.FindServer(context.Background(), "web", "example.com")
	require.NoError(t, err)
	require.Equal(t, 3, srv.ID)
	require.True(t, srv.Provisioned())
	require.Equal(t, "web.example.com", srv.FQDN)

	var flt map[string]map[string]map[string]any
	require.NoError(t, json.Unmarshal([]byte(f.requests()[0].Filter), &flt))
	require.Equal(t, "web", flt["virtualGuests"]["hostname"]["operation"])
	require.Equal(t, "example.com", flt["virtualGuests"]["domain"]["operation"])
}

func TestEventLogPage(t *testing.T) {
	t.Parallel()
	f := newFakeSL(t)
	f.on("SoftLayer_Event_Log::getAllObjects", func(r fakeReq) (int, any) {
		return 200, []map[string]any{{"eventName": "Create", "objectName": "CCI", "objectId": 1}}
	})
	c := newTestClient(t, f)
	page, err := c.EventLogPage(context.Background(), `{"objectName":{"operation":"CCI"}}`, 100, 50)
	require.NoError(t, err)
	require.Len(t, page, 1)
	require.Equal(t, "Create", *page[0].EventName)
	r := f.requests()[0]
	require.Equal(t, "100,50", r.ResultLimit)
	require.Equal(t, `{"objectName":{"operation":"CCI"}}`, r.Filter)
	require.Equal(t, "GET", r.HTTPMethod)
}

func TestNewChecksEndpointAndKey(t *testing.T) {
	t.Parallel()
	key := secret.NewString("k-1234")
	for _, ok := range []string{DefaultEndpoint, PrivateEndpoint, "http://127.0.0.1:8080/rest/v3.1", "http://localhost:1/rest/v3.1", "http://[::1]:9/rest/v3.1/"} {
		c, err := New(IBMCloudAPIKey(key), WithEndpoint(ok))
		require.NoError(t, err, ok)
		require.False(t, strings.HasSuffix(c.Endpoint(), "/"))
	}
	for _, bad := range []string{"http://api.softlayer.com/rest/v3.1", "https://user:pw@api.softlayer.com/rest/v3.1",
		"https://api.softlayer.com/xmlrpc/v3.1/", "ftp://127.0.0.1/", "https:///rest", "://"} {
		_, err := New(IBMCloudAPIKey(key), WithEndpoint(bad))
		require.Error(t, err, bad)
		require.NotContains(t, err.Error(), "pw")
	}
	skip := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}} //nolint:gosec // the test checks that it is refused
	_, err := New(IBMCloudAPIKey(key), WithHTTPClient(skip))
	require.ErrorIs(t, err, endpoint.ErrSkipVerify)
	_, err = New(IBMCloudAPIKey(nil))
	require.Error(t, err)
	c, err := New(Credentials{APIKey: key})
	require.NoError(t, err)
	require.Equal(t, IBMCloudUsername, c.creds.Username)
	require.Equal(t, DefaultEndpoint, c.Endpoint())
}

func TestIBMCloudAPIKeyAuth(t *testing.T) {
	t.Parallel()
	f := newFakeSL(t)
	serveOSCodes(f)
	var logs strings.Builder
	c, err := New(IBMCloudAPIKey(secret.NewString("iam-key-abcdef")), WithEndpoint(f.endpoint()),
		WithLogger(slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))))
	require.NoError(t, err)
	_, err = c.OSReferenceCodes(context.Background())
	require.NoError(t, err)
	r := f.requests()[0]
	require.Equal(t, "apikey", r.User)
	require.Equal(t, "iam-key-abcdef", r.Pass)

	// A debug-logged import leaves no key in the log.
	f.on("SoftLayer_Virtual_Guest_Block_Device_Template_Group::createFromIcos", func(r fakeReq) (int, any) {
		return 200, map[string]any{"id": 1}
	})
	_, err = c.Import(context.Background(), goodImport())
	require.NoError(t, err)
	require.NotEmpty(t, logs.String())
	require.NotContains(t, logs.String(), testCOSKey)
	require.NotContains(t, logs.String(), "iam-key-abcdef")
}

func TestCancelledCallUnwrapsToContextError(t *testing.T) {
	t.Parallel()
	f := newFakeSL(t)
	c := newTestClient(t, f)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := c.GetServer(ctx, 1)
	require.ErrorIs(t, err, context.Canceled)
	require.False(t, errors.Is(err, ErrNotFound))
}
