package slsim_test

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/softlayer/softlayer-go/datatypes"
	"github.com/softlayer/softlayer-go/filter"
	"github.com/softlayer/softlayer-go/services"
	"github.com/softlayer/softlayer-go/session"
	"github.com/softlayer/softlayer-go/sl"
	"github.com/stretchr/testify/require"

	"github.com/e2eimage/e2eimage/internal/cloudsim/slsim"
	"github.com/e2eimage/e2eimage/internal/testenv"
)

func TestMain(m *testing.M) {
	testenv.VerifyTestMain(m, testenv.NoStrayTemp(testenv.SimTempPattern))
}

func requireSLError(t *testing.T, err error, status int, code string) sl.Error {
	t.Helper()
	require.Error(t, err)
	var e sl.Error
	require.True(t, errors.As(err, &e), "want sl.Error, got %T: %v", err, err)
	require.Equal(t, status, e.StatusCode, "status of %v", err)
	require.Equal(t, code, e.Exception, "exception code of %v", err)
	return e
}

func TestAuthentication(t *testing.T) {
	t.Parallel()
	w := newWorld(t, 1)
	svc := func(s *session.Session) services.Virtual_Guest_Block_Device_Template_Group {
		return services.GetVirtualGuestBlockDeviceTemplateGroupService(s)
	}

	_, err := svc(w.session("not-a-key")).GetVhdImportSoftwareDescriptions()
	e := requireSLError(t, err, http.StatusUnauthorized, "SoftLayer_Exception_Public")
	require.Equal(t, "Invalid API token.", e.Message)

	// A classic username with the right key is not an IBM Cloud API key login.
	s := w.session(ownerKey)
	s.UserName = "SL123456"
	_, err = svc(s).GetVhdImportSoftwareDescriptions()
	requireSLError(t, err, http.StatusUnauthorized, "SoftLayer_Exception_Public")

	// No credentials at all.
	_, err = svc(&session.Session{Endpoint: w.api.URL + "/rest/v3.1"}).GetVhdImportSoftwareDescriptions()
	requireSLError(t, err, http.StatusUnauthorized, "SoftLayer_Exception_Public")

	// An IAM bearer token (softlayer-go sends IAMToken verbatim).
	tokSess := &session.Session{IAMToken: "Bearer tok-" + ownerKey, Endpoint: w.api.URL + "/rest/v3.1"}
	descs, err := svc(tokSess).GetVhdImportSoftwareDescriptions()
	require.NoError(t, err)
	require.NotEmpty(t, descs)
	_, err = svc(&session.Session{IAMToken: "Bearer forged", Endpoint: w.api.URL + "/rest/v3.1"}).GetVhdImportSoftwareDescriptions()
	requireSLError(t, err, http.StatusUnauthorized, "SoftLayer_Exception_Public")
}

func TestUnknownMethodServiceAndObject(t *testing.T) {
	t.Parallel()
	w := newWorld(t, 1)
	var out any
	err := w.sess.DoRequest("SoftLayer_Virtual_Guest", "frobnicate", nil, &sl.Options{Id: sl.Int(1)}, &out)
	e := requireSLError(t, err, http.StatusNotFound, "SoftLayer_Exception_Public")
	require.Contains(t, e.Message, "is not a valid method")

	err = w.sess.DoRequest("SoftLayer_Hardware_Server", "getObject", nil, &sl.Options{Id: sl.Int(1)}, &out)
	requireSLError(t, err, http.StatusNotFound, "SoftLayer_Exception_Public")

	_, err = services.GetVirtualGuestService(w.sess).Id(42).GetObject()
	e = requireSLError(t, err, http.StatusNotFound, "SoftLayer_Exception_ObjectNotFound")
	require.Contains(t, e.Message, "42")

	_, err = services.GetVirtualGuestBlockDeviceTemplateGroupService(w.sess).Id(7).GetStatus()
	requireSLError(t, err, http.StatusNotFound, "SoftLayer_Exception_ObjectNotFound")

	// getObject without an id.
	_, err = services.GetVirtualGuestService(w.sess).GetObject()
	requireSLError(t, err, http.StatusInternalServerError, "SoftLayer_Exception_Public")

	// An invalid mask property is rejected as on the real API.
	_, err = services.GetVirtualGuestBlockDeviceTemplateGroupService(w.sess).Mask("mask[id,noSuchThing]").GetVhdImportSoftwareDescriptions()
	e = requireSLError(t, err, http.StatusInternalServerError, "SoftLayer_Exception_WebService_ObjectMask")
	require.Contains(t, e.Message, "Property 'noSuchThing' not valid for 'SoftLayer_Software_Description'")
}

func TestResponsesAreNeverEmpty(t *testing.T) {
	w := newWorld(t, 1)
	// Raw HTTP: every answer, success or error, has a JSON body.
	for _, tc := range []struct{ method, path string }{
		{"GET", "/rest/v3.1/SoftLayer_Account/getPrivateBlockDeviceTemplateGroups.json"},
		{"GET", "/rest/v3.1/SoftLayer_Virtual_Guest/5.json"},
		{"GET", "/rest/v3.1/SoftLayer_Nope/getObject.json"},
		{"GET", "/rest/v3.1/SoftLayer_Event_Log/getAllObjects.json"},
		{"GET", "/somewhere/else"},
	} {
		req, _ := http.NewRequest(tc.method, w.api.URL+tc.path, nil)
		req.SetBasicAuth("apikey", ownerKey)
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		require.NotEmpty(t, body, tc.path)
		require.True(t, json.Valid(body), "%s: %s", tc.path, body)
	}
}

func TestVhdImportSoftwareDescriptions(t *testing.T) {
	t.Parallel()
	w := newWorld(t, 1)
	svc := services.GetVirtualGuestBlockDeviceTemplateGroupService(w.sess)
	all, err := svc.GetVhdImportSoftwareDescriptions()
	require.NoError(t, err)
	var codes []string
	for _, d := range all {
		codes = append(codes, *d.ReferenceCode)
		require.NotNil(t, d.Name)
	}
	for _, c := range []string{"UBUNTU_20_64", "UBUNTU_22_64", "UBUNTU_24_64", "DEBIAN_11_64", "DEBIAN_12_64",
		"CENTOS_STREAM_9_64", "REDHAT_8_64", "REDHAT_9_64", "WIN_2016-STD_64", "WIN_2019-STD_64", "WIN_2022-STD_64"} {
		require.Contains(t, codes, c)
	}

	// A mask naming a local property drops the others.
	masked, err := svc.Mask("referenceCode").GetVhdImportSoftwareDescriptions()
	require.NoError(t, err)
	require.Len(t, masked, len(all))
	require.NotNil(t, masked[0].ReferenceCode)
	require.Nil(t, masked[0].Name)

	// resultLimit and the SoftLayer-Total-Items header.
	opts := &sl.Options{Limit: sl.Int(3), Offset: sl.Int(2)}
	var page []datatypes.Software_Description
	require.NoError(t, w.sess.DoRequest("SoftLayer_Virtual_Guest_Block_Device_Template_Group", "getVhdImportSoftwareDescriptions", nil, opts, &page))
	require.Len(t, page, 3)
	require.Equal(t, len(all), opts.TotalItems)
	require.Equal(t, *all[2].ReferenceCode, *page[0].ReferenceCode)

	// objectFilter on a list.
	var ubuntu []datatypes.Software_Description
	f := filter.Build(filter.Path("referenceCode").StartsWith("UBUNTU"))
	require.NoError(t, w.sess.DoRequest("SoftLayer_Virtual_Guest_Block_Device_Template_Group", "getVhdImportSoftwareDescriptions", nil, &sl.Options{Filter: f}, &ubuntu))
	require.Len(t, ubuntu, 3)
}

func TestCreateFromIcosValidation(t *testing.T) {
	t.Parallel()
	w := newWorld(t, 1)
	svc := services.GetVirtualGuestBlockDeviceTemplateGroupService(w.sess)
	crk := w.keyCRN("kms", kpInstance, "root-1")
	good := func() *datatypes.Container_Virtual_Guest_Block_Device_Template_Configuration {
		return &datatypes.Container_Virtual_Guest_Block_Device_Template_Configuration{
			Name: sl.String("img"), Uri: sl.String("cos://us-south/images/img.vhd-0.vhd"), IbmApiKey: sl.String(importKey),
			OperatingSystemReferenceCode: sl.String("UBUNTU_22_64"), IsEncrypted: sl.Bool(true),
			CrkCrn: sl.String(crk), WrappedDek: sl.String("d3JhcHBlZA=="),
		}
	}
	for _, tc := range []struct {
		name   string
		edit   func(c *datatypes.Container_Virtual_Guest_Block_Device_Template_Configuration)
		code   string
		substr string
	}{
		{"no name", func(c *datatypes.Container_Virtual_Guest_Block_Device_Template_Configuration) { c.Name = nil }, "SoftLayer_Exception_Public", "'name' is required"},
		{"no uri", func(c *datatypes.Container_Virtual_Guest_Block_Device_Template_Configuration) { c.Uri = nil }, "SoftLayer_Exception_Public", "'uri' is required"},
		{"swift uri", func(c *datatypes.Container_Virtual_Guest_Block_Device_Template_Configuration) {
			c.Uri = sl.String("swift://acct@dal05/container/img.vhd")
		}, "SoftLayer_Exception_InvalidValue", "createFromExternalSource"},
		{"http uri", func(c *datatypes.Container_Virtual_Guest_Block_Device_Template_Configuration) {
			c.Uri = sl.String("https://s3.us-south.cloud-object-storage.appdomain.cloud/images/img.vhd")
		}, "SoftLayer_Exception_InvalidValue", "cos://<region>/<bucket>/<object>"},
		{"no object", func(c *datatypes.Container_Virtual_Guest_Block_Device_Template_Configuration) {
			c.Uri = sl.String("cos://us-south/images")
		}, "SoftLayer_Exception_InvalidValue", "cos://<region>/<bucket>/<object>"},
		{"bad bucket", func(c *datatypes.Container_Virtual_Guest_Block_Device_Template_Configuration) {
			c.Uri = sl.String("cos://us-south/Bad_Bucket/img.vhd")
		}, "SoftLayer_Exception_InvalidValue", "invalid bucket"},
		{"not vhd", func(c *datatypes.Container_Virtual_Guest_Block_Device_Template_Configuration) {
			c.Uri = sl.String("cos://us-south/images/img.qcow2")
		}, "SoftLayer_Exception_InvalidValue", ".vhd-0.vhd"},
		{"no api key", func(c *datatypes.Container_Virtual_Guest_Block_Device_Template_Configuration) { c.IbmApiKey = nil }, "SoftLayer_Exception_Public", "'ibmApiKey' is required"},
		{"hmac only", func(c *datatypes.Container_Virtual_Guest_Block_Device_Template_Configuration) {
			c.IbmApiKey = nil
			c.IbmAccessKey, c.IbmSecretKey = sl.String("a"), sl.String("b")
		}, "SoftLayer_Exception_Public", "HMAC"},
		{"encrypted without crk", func(c *datatypes.Container_Virtual_Guest_Block_Device_Template_Configuration) { c.CrkCrn = nil }, "SoftLayer_Exception_Public", "'crkCrn'"},
		{"encrypted without wdek", func(c *datatypes.Container_Virtual_Guest_Block_Device_Template_Configuration) { c.WrappedDek = nil }, "SoftLayer_Exception_Public", "'wrappedDek'"},
		{"crk not a key crn", func(c *datatypes.Container_Virtual_Guest_Block_Device_Template_Configuration) {
			c.CrkCrn = sl.String("crn:v1:bluemix:public:kms:us-south:a/acct:inst::")
		}, "SoftLayer_Exception_InvalidValue", "not a root key CRN"},
		{"crk of another service", func(c *datatypes.Container_Virtual_Guest_Block_Device_Template_Configuration) {
			c.CrkCrn = sl.String("crn:v1:bluemix:public:secrets-manager:us-south:a/acct:inst:key:k")
		}, "SoftLayer_Exception_InvalidValue", "Key Protect (kms) or Hyper Protect"},
		{"wdek not base64", func(c *datatypes.Container_Virtual_Guest_Block_Device_Template_Configuration) {
			c.WrappedDek = sl.String("not base64!")
		}, "SoftLayer_Exception_InvalidValue", "base64"},
		{"crk on unencrypted import", func(c *datatypes.Container_Virtual_Guest_Block_Device_Template_Configuration) {
			c.IsEncrypted = sl.Bool(false)
		}, "SoftLayer_Exception_InvalidValue", "only valid for an encrypted import"},
		{"no os", func(c *datatypes.Container_Virtual_Guest_Block_Device_Template_Configuration) {
			c.OperatingSystemReferenceCode = nil
		}, "SoftLayer_Exception_Public", "operatingSystemReferenceCode"},
		{"unsupported os", func(c *datatypes.Container_Virtual_Guest_Block_Device_Template_Configuration) {
			c.OperatingSystemReferenceCode = sl.String("CENTOS_6_64")
		}, "SoftLayer_Exception_InvalidValue", "getVhdImportSoftwareDescriptions"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := good()
			tc.edit(c)
			_, err := svc.CreateFromIcos(c)
			e := requireSLError(t, err, http.StatusInternalServerError, tc.code)
			require.Contains(t, e.Message, tc.substr)
			require.NotContains(t, e.Message, importKey)
		})
	}
	require.Empty(t, w.srv.Templates(), "a rejected import must not create a template")

	// Without a parameter at all.
	var out datatypes.Virtual_Guest_Block_Device_Template_Group
	err := w.sess.DoRequest("SoftLayer_Virtual_Guest_Block_Device_Template_Group", "createFromIcos", nil, &sl.Options{}, &out)
	requireSLError(t, err, http.StatusInternalServerError, "SoftLayer_Exception_Public")
}

func TestCreateFromIcosForcesFlags(t *testing.T) {
	t.Parallel()
	w := newWorld(t, 1) // real-time clock: the imports stay pending
	svc := services.GetVirtualGuestBlockDeviceTemplateGroupService(w.sess)
	crk := w.keyCRN("kms", kpInstance, "root-1")
	// isEncrypted omitted but crkCrn + wrappedDek given: encrypted; RHEL: BYOL.
	g, err := svc.CreateFromIcos(&datatypes.Container_Virtual_Guest_Block_Device_Template_Configuration{
		Name: sl.String("rhel"), Uri: sl.String("cos://us-south/images/rhel.vhd"), IbmApiKey: sl.String(importKey),
		OperatingSystemReferenceCode: sl.String("REDHAT_9_64"), CrkCrn: sl.String(crk), WrappedDek: sl.String("d3JhcHBlZA=="),
		CloudInit: sl.Bool(false), Byol: sl.Bool(false),
	})
	require.NoError(t, err)
	id := *g.Id
	require.NotNil(t, g.GlobalIdentifier)
	require.Equal(t, "Active", *g.Status.Name, "the parent says Active while its child imports")
	require.Nil(t, g.Transaction)
	full, err := svc.Id(id).Mask("mask[transactionId,children[transactionId,transaction]]").GetObject()
	require.NoError(t, err)
	require.Nil(t, full.TransactionId)
	require.Len(t, full.Children, 1, "the import runs on a child in the import data center")

	for name, call := range map[string]func() (bool, error){
		"isEncrypted": svc.Id(id).IsEncrypted, "isCloudInit": svc.Id(id).IsCloudInit, "isByol": svc.Id(id).IsByol,
	} {
		v, err := call()
		require.NoError(t, err, name)
		require.True(t, v, name)
	}
	// Unencrypted Ubuntu keeps what was asked.
	g2, err := svc.CreateFromIcos(&datatypes.Container_Virtual_Guest_Block_Device_Template_Configuration{
		Name: sl.String("plain"), Uri: sl.String("cos://us-south/images/plain.vhd"), IbmApiKey: sl.String(importKey),
		OperatingSystemReferenceCode: sl.String("UBUNTU_22_64"), CloudInit: sl.Bool(false),
	})
	require.NoError(t, err)
	enc, err := svc.Id(*g2.Id).IsEncrypted()
	require.NoError(t, err)
	require.False(t, enc)
	ci, err := svc.Id(*g2.Id).IsCloudInit()
	require.NoError(t, err)
	require.False(t, ci)
	attrs, err := svc.Id(*g2.Id).GetEncryptionAttributes()
	require.NoError(t, err)
	require.Empty(t, attrs)
}

func TestTemplateMasksAndAccountFilters(t *testing.T) {
	t.Parallel()
	w := newWorld(t, 1) // real-time clock: verified imports stay in the copy phase
	svc := services.GetVirtualGuestBlockDeviceTemplateGroupService(w.sess)
	var ids []int
	var guids []string
	img := makeVHD(t, linuxDisk(t), nil)
	for _, name := range []string{"alpha-web", "beta-db", "alpha-cache"} {
		w.s3.put("images", name+".vhd", img)
		g, err := svc.CreateFromIcos(&datatypes.Container_Virtual_Guest_Block_Device_Template_Configuration{
			Name: sl.String(name), Note: sl.String("note " + name), Uri: sl.String("cos://us-south/images/" + name + ".vhd"),
			IbmApiKey: sl.String(importKey), OperatingSystemReferenceCode: sl.String("DEBIAN_12_64"),
		})
		require.NoError(t, err)
		ids = append(ids, *g.Id)
		guids = append(guids, *g.GlobalIdentifier)
	}

	// No mask: local properties only (globalIdentifier and status are relational).
	g, err := svc.Id(ids[0]).GetObject()
	require.NoError(t, err)
	require.Equal(t, ids[0], *g.Id)
	require.Equal(t, "alpha-web", *g.Name)
	require.Equal(t, "note alpha-web", *g.Note)
	require.NotNil(t, g.CreateDate)
	require.Nil(t, g.TransactionId, "the import runs on the child")
	require.Nil(t, g.GlobalIdentifier)
	require.Nil(t, g.Status)
	require.Nil(t, g.Transaction)

	// Relational properties on request; a local one in the mask drops the rest.
	g, err = svc.Id(ids[0]).Mask("mask[id,globalIdentifier,status,children[transaction[transactionStatus[name,friendlyName]]],byolFlag,imageType]").GetObject()
	require.NoError(t, err)
	require.Nil(t, g.Name)
	require.Equal(t, guids[0], *g.GlobalIdentifier)
	require.Equal(t, "ACTIVE", *g.Status.KeyName)
	require.Equal(t, "Active", *g.Status.Name)
	require.Len(t, g.Children, 1)
	ctx := g.Children[0].Transaction
	require.NotEmpty(t, *ctx.TransactionStatus.Name)
	require.NotEmpty(t, *ctx.TransactionStatus.FriendlyName)
	require.NotNil(t, ctx.Id, "naming only a relational property keeps the locals")
	require.False(t, *g.ByolFlag)
	require.Equal(t, "SYSTEM", *g.ImageType.KeyName)

	// Only relational properties in the mask: all locals plus those.
	g, err = svc.Id(ids[0]).Mask("status.keyName").GetObject()
	require.NoError(t, err)
	require.Equal(t, "alpha-web", *g.Name)
	require.Equal(t, "ACTIVE", *g.Status.KeyName)
	require.Nil(t, g.Status.Name)

	// Count properties.
	g, err = svc.Id(ids[0]).Mask("mask[childrenCount,blockDeviceCount]").GetObject()
	require.NoError(t, err)
	require.Equal(t, uint(1), *g.ChildrenCount, "the child in the import data center")

	// Generic property getters.
	st, err := svc.Id(ids[1]).GetStatus()
	require.NoError(t, err)
	require.Equal(t, "ACTIVE", *st.KeyName)
	children, err := svc.Id(ids[1]).GetChildren()
	require.NoError(t, err)
	require.Len(t, children, 1)
	tx, err := svc.Id(*children[0].Id).GetTransaction()
	require.NoError(t, err)
	require.NotNil(t, tx.Id)
	gid, err := svc.Id(ids[1]).GetGlobalIdentifier()
	require.NoError(t, err)
	require.Equal(t, guids[1], gid)

	acct := services.GetAccountService(w.sess)
	list, err := acct.GetPrivateBlockDeviceTemplateGroups()
	require.NoError(t, err)
	require.Len(t, list, 3)

	byFilter := func(f string) []int {
		t.Helper()
		l, err := acct.Filter(f).Mask("id").GetPrivateBlockDeviceTemplateGroups()
		require.NoError(t, err)
		var out []int
		for _, x := range l {
			out = append(out, *x.Id)
		}
		return out
	}
	require.Equal(t, []int{ids[1]}, byFilter(`{"privateBlockDeviceTemplateGroups":{"name":{"operation":"beta-db"}}}`))
	require.Equal(t, []int{ids[0], ids[2]}, byFilter(filter.Build(filter.Path("privateBlockDeviceTemplateGroups.name").StartsWith("alpha"))))
	require.Equal(t, []int{ids[2]}, byFilter(filter.Build(filter.Path("privateBlockDeviceTemplateGroups.name").EndsWith("CACHE"))))
	require.Equal(t, []int{ids[0], ids[2]}, byFilter(filter.Build(filter.Path("privateBlockDeviceTemplateGroups.name").Contains("ALPHA"))))
	require.Equal(t, []int{ids[1]}, byFilter(`{"privateBlockDeviceTemplateGroups":{"name":{"operation":"_= BETA-DB"}}}`))
	require.Equal(t, []int{ids[0], ids[2]}, byFilter(filter.Build(filter.Path("privateBlockDeviceTemplateGroups.name").NotEq("beta-db"))))
	require.Equal(t, []int{ids[2]}, byFilter(filter.Build(filter.Path("privateBlockDeviceTemplateGroups.id").Eq(ids[2]))))
	require.Equal(t, []int{ids[0]}, byFilter(filter.Build(filter.Path("privateBlockDeviceTemplateGroups.globalIdentifier").Eq(guids[0]))))
	require.Equal(t, []int{ids[0], ids[1]}, byFilter(filter.Build(filter.Path("privateBlockDeviceTemplateGroups.id").In(ids[0], ids[1]))))
	require.Equal(t, []int{ids[0], ids[1], ids[2]}, byFilter(filter.Build(filter.Path("privateBlockDeviceTemplateGroups.status.keyName").Eq("ACTIVE"))))
	require.Empty(t, byFilter(filter.Build(filter.Path("privateBlockDeviceTemplateGroups.status.keyName").Eq("ERROR"))))
	// Unknown properties in a filter are ignored, as on the real API.
	require.Len(t, byFilter(`{"privateBlockDeviceTemplateGroups":{"flavour":{"operation":"x"}}}`), 3)
	// orderBy.
	require.Equal(t, []int{ids[2], ids[1], ids[0]}, byFilter(`{"privateBlockDeviceTemplateGroups":{"id":{"operation":"orderBy","options":[{"name":"sort","value":["DESC"]}]}}}`))
	require.Len(t, byFilter(`{"blockDeviceTemplateGroups":{"name":{"operation":"beta-db"}}}`), 3, "the filter root must match the method's property")
	l2, err := acct.Filter(`{"blockDeviceTemplateGroups":{"name":{"operation":"beta-db"}}}`).GetBlockDeviceTemplateGroups()
	require.NoError(t, err)
	require.Len(t, l2, 1)

	// Another account sees nothing and cannot read the template.
	other := w.session(otherKey)
	l3, err := services.GetAccountService(other).GetPrivateBlockDeviceTemplateGroups()
	require.NoError(t, err)
	require.Empty(t, l3)
	_, err = services.GetVirtualGuestBlockDeviceTemplateGroupService(other).Id(ids[0]).GetObject()
	requireSLError(t, err, http.StatusNotFound, "SoftLayer_Exception_ObjectNotFound")

	// deleteObject returns a transaction and removes the template.
	dtx, err := svc.Id(ids[1]).DeleteObject()
	require.NoError(t, err)
	require.NotNil(t, dtx.Id)
	_, err = svc.Id(ids[1]).GetObject()
	requireSLError(t, err, http.StatusNotFound, "SoftLayer_Exception_ObjectNotFound")
	list, err = acct.GetPrivateBlockDeviceTemplateGroups()
	require.NoError(t, err)
	require.Len(t, list, 2)
}

func TestAccountGetObject(t *testing.T) {
	t.Parallel()
	w := newWorld(t, 1)
	a, err := services.GetAccountService(w.sess).GetObject()
	require.NoError(t, err)
	require.NotNil(t, a.Id)
	require.Contains(t, *a.CompanyName, testAccount)
	require.Nil(t, a.VirtualGuests)
	b, err := services.GetAccountService(w.session(importKey)).Mask("id").GetObject()
	require.NoError(t, err)
	require.Equal(t, *a.Id, *b.Id, "two identities of one IBM Cloud account share the classic account")
	c, err := services.GetAccountService(w.session(otherKey)).GetObject()
	require.NoError(t, err)
	require.NotEqual(t, *a.Id, *c.Id)
}

func waitFor(t *testing.T, srv *slsim.Server, what string, cond func() bool) {
	t.Helper()
	// The bound only turns a hang into a failure; progress is signalled.
	deadline := time.NewTimer(20 * time.Second)
	defer deadline.Stop()
	for {
		changed := srv.Progress() // taken before the check: no change is missed
		if cond() {
			return
		}
		select {
		case <-changed:
		case <-deadline.C:
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}
