package classic

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/e2eimage/e2eimage/secret"
)

// The tests in this file replay the shapes of published sources (see
// testdata/contract/README.md) through an httptest server.

func contract(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "contract", name))
	require.NoError(t, err)
	return string(b)
}

// replay answers getObject of a template with the given fixtures in order,
// repeating the last, and counts the polls.
type replay struct {
	mu    sync.Mutex
	steps []replayStep
	polls int
}

type replayStep struct {
	status int
	body   string
}

func (r *replay) serve(f *fakeSL) {
	f.on("SoftLayer_Virtual_Guest_Block_Device_Template_Group::getObject", func(fakeReq) (int, any) {
		r.mu.Lock()
		defer r.mu.Unlock()
		s := r.steps[min(r.polls, len(r.steps)-1)]
		r.polls++
		return s.status, s.body
	})
}

func (r *replay) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.polls
}

func replayOf(t *testing.T, names ...string) *replay {
	r := &replay{}
	for _, n := range names {
		st := 200
		if strings.HasPrefix(n, "error_") {
			st = 404
		}
		r.steps = append(r.steps, replayStep{st, contract(t, n)})
	}
	return r
}

// steppingClock advances by step every time it is read.
type steppingClock struct {
	mu   sync.Mutex
	now  time.Time
	step time.Duration
}

func (c *steppingClock) read() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(c.step)
	return c.now
}

func withClock(c *steppingClock) Option { return func(o *options) { o.now = c.read } }

func TestContractTemplateParsesChildren(t *testing.T) {
	t.Parallel()
	f := newFakeSL(t)
	replayOf(t, "template_importing.json").serve(f)
	c := newTestClient(t, f)
	tmpl, err := c.GetTemplate(context.Background(), 2200100)
	require.NoError(t, err)
	require.Equal(t, "Active", tmpl.StatusName, "the parent says Active")
	require.True(t, tmpl.ActiveStatus())
	require.Len(t, tmpl.Copies, 1)
	require.Equal(t, "dal13", tmpl.Copies[0].Datacenter)
	require.Equal(t, "IMAGE_IMPORT", tmpl.Copies[0].Transaction)
	require.True(t, tmpl.Busy())
	require.False(t, tmpl.Active(), "a copy is still importing")
	require.Equal(t, "IMAGE_IMPORT", tmpl.Transaction, "the copy's transaction is the template's progress")
	require.Equal(t, []string{"dal13"}, tmpl.Datacenters)

	// The mask asks for what the decision needs, on the parent and on
	// each child.
	m := f.requests()[0].Mask
	for _, want := range []string{"children[", "transaction[transactionStatus,transactionGroup]", "transactionId", "blockDevices", "datacenter[id,name]", "status"} {
		require.Contains(t, m, want)
	}
}

func TestContractWaitTemplateWaitsForTheChildren(t *testing.T) {
	t.Parallel()
	f := newFakeSL(t)
	r := replayOf(t, "template_importing.json", "template_transaction_id_only.json", "template_importing.json", "template_done.json")
	r.serve(f)
	c := newTestClient(t, f)
	var seen []string
	tmpl, err := c.WaitTemplate(context.Background(), 2200100, TemplateProgress(func(t Template) {
		seen = append(seen, t.Transaction)
	}))
	require.NoError(t, err)
	require.True(t, tmpl.Active())
	require.Equal(t, 4, r.count(), "the parent said Active from the first poll; the wait ended when the child's transaction had")
	require.Equal(t, []string{"IMAGE_IMPORT", "UNKNOWN", "IMAGE_IMPORT", ""}, seen)
	require.True(t, tmpl.ReadyIn("dal13"))
	require.False(t, tmpl.ReadyIn("lon02"))
}

func TestContractUndocumentedStateEndsAfterTheBound(t *testing.T) {
	t.Parallel()
	// template_no_copies.json after a poll that saw a copy importing is a
	// vanished copy (TestContractVanishedChild); here it is seen from the
	// first poll.
	for _, tc := range []struct {
		steps []string
		polls int
	}{
		// One poll while importing, then one per simulated minute of
		// the unknown state, the first of which starts the bound.
		{[]string{"template_importing.json", "template_undocumented_status.json"}, 1 + 11},
		{[]string{"template_no_copies.json"}, 11},
	} {
		t.Run(tc.steps[len(tc.steps)-1], func(t *testing.T) {
			f := newFakeSL(t)
			r := replayOf(t, tc.steps...)
			r.serve(f)
			clock := &steppingClock{now: time.Unix(1_700_000_000, 0), step: time.Minute}
			c := newTestClient(t, f, withClock(clock), WithUnknownStateBound(10*time.Minute))
			tmpl, err := c.WaitTemplate(context.Background(), 2200100)
			require.ErrorIs(t, err, ErrTemplateStateUnknown)
			require.ErrorIs(t, err, ErrTemplateNotActive)
			var se *TemplateStateError
			require.ErrorAs(t, err, &se)
			require.GreaterOrEqual(t, se.For, 10*time.Minute)
			require.NotNil(t, tmpl)
			require.Equal(t, tc.polls, r.count())
		})
	}
}

func TestContractUnknownBoundPerCall(t *testing.T) {
	t.Parallel()
	f := newFakeSL(t)
	r := replayOf(t, "template_undocumented_status.json")
	r.serve(f)
	clock := &steppingClock{now: time.Unix(1_700_000_000, 0), step: time.Minute}
	c := newTestClient(t, f, withClock(clock))
	_, err := c.WaitTemplate(context.Background(), 2200100, UnknownStateAfter(3*time.Minute))
	require.ErrorIs(t, err, ErrTemplateStateUnknown)
	require.Equal(t, 4, r.count())
}

func TestContractVanishedTemplate(t *testing.T) {
	t.Parallel()
	f := newFakeSL(t)
	r := replayOf(t, "template_importing.json", "template_importing.json", "error_object_not_found.json")
	r.serve(f)
	c := newTestClient(t, f)
	tmpl, err := c.WaitTemplate(context.Background(), 2200100)
	require.ErrorIs(t, err, ErrTemplateGone)
	require.ErrorIs(t, err, ErrNotFound)
	var ge *TemplateGoneError
	require.ErrorAs(t, err, &ge)
	require.Equal(t, 2200100, ge.TemplateID)
	require.NotNil(t, ge.Last)
	require.Equal(t, "IMAGE_IMPORT", ge.Last.Transaction)
	var ae *APIError
	require.ErrorAs(t, err, &ae, "the API's answer is kept")
	require.Equal(t, "SoftLayer_Exception_ObjectNotFound", ae.Code)
	require.Equal(t, 3, r.count(), "a 404 ends the wait at once")
	require.NotNil(t, tmpl)
}

func TestContractDeprecatedTemplate(t *testing.T) {
	t.Parallel()
	f := newFakeSL(t)
	replayOf(t, "template_deprecated.json").serve(f)
	c := newTestClient(t, f)
	_, err := c.WaitTemplate(context.Background(), 2200100)
	require.ErrorIs(t, err, ErrTemplateNotActive)
	require.NotErrorIs(t, err, ErrTemplateStateUnknown)
	var se *TemplateStateError
	require.ErrorAs(t, err, &se)
	require.True(t, se.Deprecated)
}

// goldenRequest compares a request body with a golden file, after putting
// the test's secrets in place of the file's placeholders.
func goldenRequest(t *testing.T, name string, got string, placeholders map[string]string) {
	t.Helper()
	want := contract(t, name)
	for k, v := range placeholders {
		want = strings.ReplaceAll(want, k, v)
	}
	var w, g any
	require.NoError(t, json.Unmarshal([]byte(want), &w), name)
	require.NoError(t, json.Unmarshal([]byte(got), &g))
	require.Equal(t, w, g, "request body differs from %s:\n%s", name, got)
}

func TestContractCreateFromIcosBody(t *testing.T) {
	t.Parallel()
	f := newFakeSL(t)
	serveOSCodes(f)
	f.on("SoftLayer_Virtual_Guest_Block_Device_Template_Group::createFromIcos", func(fakeReq) (int, any) {
		return 200, map[string]any{"id": 2200100, "name": "e2e-ubuntu", "globalIdentifier": "5d1f0a3e-8c2b-4e7d-9a61-0f2b3c4d5e6f",
			"createDate": "2026-02-03T04:05:06-06:00"}
	})
	c := newTestClient(t, f)
	_, err := c.Import(context.Background(), goodImport())
	require.NoError(t, err)
	reqs := f.requests()
	last := reqs[len(reqs)-1]
	require.Equal(t, "createFromIcos", last.Method)
	goldenRequest(t, "request_createFromIcos_encrypted.json", last.Body,
		map[string]string{"<ibmApiKey>": testCOSKey, "<wrappedDek>": testWDEK})
}

func TestContractOrderBodies(t *testing.T) {
	t.Parallel()
	f := newFakeSL(t)
	replayOf(t, "template_done.json").serve(f)
	f.on("SoftLayer_Virtual_Guest::generateOrderTemplate", func(fakeReq) (int, any) {
		return 200, contract(t, "response_generateOrderTemplate.json")
	})
	f.on("SoftLayer_Product_Order::verifyOrder", func(fakeReq) (int, any) {
		return 200, contract(t, "response_generateOrderTemplate.json")
	})
	f.on("SoftLayer_Virtual_Guest::createObject", func(fakeReq) (int, any) {
		return 200, map[string]any{"id": 555, "hostname": "e2e-test", "domain": "example.com"}
	})
	c := newTestClient(t, f)
	spec := goodSpec()
	spec.Template = TemplateRef{ID: 2200100}
	spec.Datacenter = "" // the template's data center
	srv, err := c.CreateServer(context.Background(), spec)
	require.NoError(t, err)
	require.Equal(t, 555, srv.ID)
	bodies := map[string]string{}
	for _, r := range f.requests() {
		bodies[r.Service+"::"+r.Method] = r.Body
	}
	goldenRequest(t, "request_verifyOrder.json", bodies["SoftLayer_Product_Order::verifyOrder"], nil)
	goldenRequest(t, "request_createObject_from_template.json", bodies["SoftLayer_Virtual_Guest::createObject"], nil)
	goldenRequest(t, "request_createObject_from_template.json", bodies["SoftLayer_Virtual_Guest::generateOrderTemplate"], nil)
}

func TestContractOrderElsewhereCopiesFirst(t *testing.T) {
	t.Parallel()
	f := newFakeSL(t)
	// Read by VerifyServer, Placement, CreateServer and CopyTemplate;
	// then the copy runs for two polls.
	r := replayOf(t, "template_done.json", "template_done.json", "template_done.json", "template_done.json",
		"template_copying.json", "template_copying.json", "template_copied.json")
	r.serve(f)
	f.on("SoftLayer_Virtual_Guest_Block_Device_Template_Group::getStorageLocations", func(fakeReq) (int, any) {
		return 200, contract(t, "storage_locations.json")
	})
	f.on("SoftLayer_Virtual_Guest_Block_Device_Template_Group::addLocations", func(fakeReq) (int, any) {
		return 200, "true"
	})
	f.on("SoftLayer_Virtual_Guest::generateOrderTemplate", func(fakeReq) (int, any) {
		return 200, contract(t, "response_generateOrderTemplate.json")
	})
	f.on("SoftLayer_Product_Order::verifyOrder", func(fakeReq) (int, any) {
		return 200, contract(t, "response_generateOrderTemplate.json")
	})
	f.on("SoftLayer_Virtual_Guest::createObject", func(fakeReq) (int, any) {
		return 200, map[string]any{"id": 556}
	})
	c := newTestClient(t, f)
	spec := goodSpec()
	spec.Template = TemplateRef{ID: 2200100}
	spec.Datacenter = "lon02"

	// A dry run neither copies nor orders.
	_, err := c.VerifyServer(context.Background(), spec)
	require.ErrorIs(t, err, ErrTemplateNotInDatacenter)
	var pe *PlacementError
	require.ErrorAs(t, err, &pe)
	require.Equal(t, []string{"dal13"}, pe.TemplateDatacenters)
	require.Zero(t, f.count("SoftLayer_Virtual_Guest_Block_Device_Template_Group::addLocations"))

	p, err := c.Placement(context.Background(), spec)
	require.NoError(t, err)
	require.True(t, p.Copy)
	require.Equal(t, "lon02", p.Datacenter)
	require.Contains(t, p.String(), "copied there (addLocations)")

	_, err = c.CreateServer(context.Background(), spec)
	require.NoError(t, err)
	var ops []string
	var addBody, guestBody string
	for _, r := range f.requests() {
		ops = append(ops, r.Method)
		switch r.Method {
		case "addLocations":
			addBody = r.Body
		case "createObject":
			guestBody = r.Body
		}
	}
	require.Equal(t, []string{"getObject", "getObject", "getObject", "getStorageLocations", "addLocations", "getObject", "getObject", "getObject",
		"generateOrderTemplate", "verifyOrder", "createObject"}, ops[1:], "after the dry run: copy, wait for the copy, then order")
	goldenRequest(t, "request_addLocations.json", addBody, nil)
	require.Contains(t, guestBody, `"datacenter":{"name":"lon02"}`)
}

func TestContractPlacementBeforeTheImport(t *testing.T) {
	t.Parallel()
	cases := []struct {
		region, dc string
		want       Placement
		text       string
	}{
		{"us-south", "", Placement{Datacenter: "dal13", TemplateDatacenters: []string{"dal13"}}, "dal13, the template's data center"},
		{"eu-de", "fra02", Placement{Datacenter: "fra02", TemplateDatacenters: []string{"fra02"}, Asked: true}, "where the template is"},
		{"eu-gb", "ams03", Placement{Datacenter: "ams03", TemplateDatacenters: []string{"lon02"}, Copy: true, Asked: true}, "in lon02, is first copied"},
		{"jp-tok", "", Placement{}, "IBM documents none"},
		{"au-syd", "syd05", Placement{Datacenter: "syd05", Copy: true, Asked: true}, "unless the import lands there"},
	}
	for _, tc := range cases {
		p := PlanPlacement(tc.region, tc.dc)
		require.Equal(t, tc.want, p, tc.region)
		require.Contains(t, p.String(), tc.text)
	}
	_, ok := ImportDatacenter("jp-tok")
	require.False(t, ok, "IBM names no data center for AP-Japan")
}

func TestContractCopyToIcosBodyAndExportedNames(t *testing.T) {
	t.Parallel()
	f := newFakeSL(t)
	f.on("SoftLayer_Virtual_Guest_Block_Device_Template_Group::copyToIcos", func(fakeReq) (int, any) { return 200, "true" })
	replayOf(t, "template_copying.json", "template_copied.json").serve(f)
	c := newTestClient(t, f)
	var lists []string
	exported := false
	list := func(_ context.Context, bucket, prefix string) ([]ListedObject, error) {
		lists = append(lists, bucket+"/"+prefix)
		objs := []ListedObject{{Key: "image.vhd.bak", Size: 1}, {Key: "imagery-0.vhd", Size: 1}}
		if exported {
			objs = append(objs, ListedObject{Key: "image-1.vhd", Size: 7}, ListedObject{Key: "image-0.vhd", Size: 9})
		}
		return objs, nil
	}
	f.on("SoftLayer_Virtual_Guest_Block_Device_Template_Group::getObject", func(r fakeReq) (int, any) {
		exported = true
		return 200, contract(t, "template_copied.json")
	})
	res, err := c.Export(context.Background(), 2200100, ExportRequest{URI: "cos://us-south/exports/image.vhd", APIKey: secret.NewString(testCOSKey), List: list})
	require.NoError(t, err)
	require.Equal(t, []ExportedObject{
		{URI: "cos://us-south/exports/image-0.vhd", Key: "image-0.vhd", BlockDevice: 0, Size: 9},
		{URI: "cos://us-south/exports/image-1.vhd", Key: "image-1.vhd", BlockDevice: 1, Size: 7},
	}, res.Objects)
	require.Equal(t, "exports/image", lists[0], "listed by the prefix of the file name")
	for _, r := range f.requests() {
		if r.Method == "copyToIcos" {
			goldenRequest(t, "request_copyToIcos.json", r.Body, map[string]string{"<ibmApiKey>": testCOSKey})
		}
	}

	// Objects of an earlier export under the same name: refused before
	// copyToIcos.
	before := f.count("SoftLayer_Virtual_Guest_Block_Device_Template_Group::copyToIcos")
	_, err = c.Export(context.Background(), 2200100, ExportRequest{URI: "cos://us-south/exports/image.vhd", APIKey: secret.NewString(testCOSKey), List: list})
	require.ErrorIs(t, err, ErrExportTargetExists)
	require.Equal(t, before, f.count("SoftLayer_Virtual_Guest_Block_Device_Template_Group::copyToIcos"))
}

func TestExportMissingObjectsEndAfterTheBound(t *testing.T) {
	t.Parallel()
	f := newFakeSL(t)
	f.on("SoftLayer_Virtual_Guest_Block_Device_Template_Group::copyToIcos", func(fakeReq) (int, any) { return 200, "true" })
	r := replayOf(t, "template_done.json")
	r.serve(f)
	clock := &steppingClock{now: time.Unix(1_700_000_000, 0), step: time.Minute}
	c := newTestClient(t, f, withClock(clock), WithUnknownStateBound(5*time.Minute))
	none := func(context.Context, string, string) ([]ListedObject, error) { return nil, nil }
	_, err := c.Export(context.Background(), 2200100, ExportRequest{URI: "cos://us-south/exports/image.vhd", APIKey: secret.NewString(testCOSKey), List: none})
	require.ErrorIs(t, err, ErrExportMissing)
	require.Equal(t, 6, r.count())

	boom := errors.New("listing failed")
	failing := func(context.Context, string, string) ([]ListedObject, error) { return nil, boom }
	_, err = c.Export(context.Background(), 2200100, ExportRequest{URI: "cos://us-south/exports/image.vhd", APIKey: secret.NewString(testCOSKey), List: failing})
	require.ErrorIs(t, err, boom)
	_, err = c.Export(context.Background(), 2200100, ExportRequest{URI: "cos://us-south/exports/image.vhd", APIKey: secret.NewString(testCOSKey)})
	require.ErrorContains(t, err, "ObjectLister")
}

func TestOSCodesLimitedToTheDocumentedSystems(t *testing.T) {
	t.Parallel()
	f := newFakeSL(t)
	f.on("SoftLayer_Virtual_Guest_Block_Device_Template_Group::getVhdImportSoftwareDescriptions", func(fakeReq) (int, any) {
		return 200, []map[string]any{
			{"referenceCode": "UBUNTU_22_64", "name": "Ubuntu", "version": "22.04-64"},
			{"referenceCode": "CENTOS_7_64", "name": "CentOS", "version": "7.0-64"},
		}
	})
	c := newTestClient(t, f)
	req := goodImport()
	req.OSCode = "CENTOS_7_64"
	err := c.ValidateImport(context.Background(), req)
	var ie *InvalidImportError
	require.ErrorAs(t, err, &ie)
	require.Equal(t, "OSCode", ie.Field)
	require.Contains(t, ie.Reason, "AnyOSCode")
	require.Empty(t, f.requests(), "refused before asking the API")

	req.AnyOSCode = true
	require.NoError(t, c.ValidateImport(context.Background(), req), "the API accepts it and the caller asked for any code")

	// A documented code the API does not offer is refused too.
	req = goodImport()
	req.OSCode = "DEBIAN_12_64"
	require.ErrorAs(t, c.ValidateImport(context.Background(), req), &ie)
	require.Equal(t, "OSCode", ie.Field)

	for _, o := range SupportedOperatingSystems() {
		require.True(t, IsSupportedOSCode(o.Code), o.Code)
	}
	require.Len(t, SupportedOperatingSystems(), 11)
}
