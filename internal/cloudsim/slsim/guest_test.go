package slsim_test

import (
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/softlayer/softlayer-go/datatypes"
	"github.com/softlayer/softlayer-go/filter"
	"github.com/softlayer/softlayer-go/services"
	"github.com/softlayer/softlayer-go/sl"
	"github.com/stretchr/testify/require"

	"github.com/e2eimage/e2eimage/internal/cloudsim/simcore"
	"github.com/e2eimage/e2eimage/internal/cloudsim/slsim"
)

func guestTemplate(templateGUID string) *datatypes.Virtual_Guest {
	return &datatypes.Virtual_Guest{
		Hostname: sl.String("web01"), Domain: sl.String("example.com"), StartCpus: sl.Int(2), MaxMemory: sl.Int(4096),
		Datacenter: &datatypes.Location{Name: sl.String("dal13")}, HourlyBillingFlag: sl.Bool(true), LocalDiskFlag: sl.Bool(false),
		BlockDeviceTemplateGroup: &datatypes.Virtual_Guest_Block_Device_Template_Group{GlobalIdentifier: sl.String(templateGUID)},
	}
}

// activeTemplate imports an encrypted image and waits for it; it returns
// the template's globalIdentifier.
func activeTemplate(t *testing.T, w *world) string {
	t.Helper()
	w.kms.addKey(t, "root-1")
	dek := randomDEK(32)
	w.s3.put("images", "enc.vhd", makeVHD(t, linuxDisk(t), dek))
	id := w.createImport(t, importSpec{uri: "cos://us-south/images/enc.vhd", crk: w.keyCRN("kms", kpInstance, "root-1"), wdek: w.kms.wrap(t, "root-1", dek)})
	g := w.waitImport(t, id)
	require.Equal(t, "ACTIVE", *g.Status.KeyName, deref(g.Status.Description))
	return *g.GlobalIdentifier
}

// provisionWorld runs imports in milliseconds and provisioning in about
// 300 ms of real time, long enough to observe the transaction.
func provisionWorld(t *testing.T) *world {
	return newWorld(t, 1000, func(c *slsim.Config) { c.ImportDuration = time.Minute })
}

func TestCreateObjectProvisions(t *testing.T) {
	t.Parallel()
	w := provisionWorld(t)
	guid := activeTemplate(t, w)
	vs := services.GetVirtualGuestService(w.sess)
	g, err := vs.CreateObject(guestTemplate(guid))
	require.NoError(t, err)
	id := *g.Id
	require.NotNil(t, g.GlobalIdentifier)
	require.Equal(t, "web01.example.com", *g.FullyQualifiedDomainName)
	require.Equal(t, "dal13", *g.Datacenter.Name)

	// Not provisioned yet.
	pd, err := vs.Id(id).GetProvisionDate()
	require.NoError(t, err)
	require.True(t, pd.IsZero())
	at, err := vs.Id(id).Mask("mask[id,guestId,transactionStatus]").GetActiveTransaction()
	require.NoError(t, err)
	require.NotNil(t, at.TransactionStatus)
	require.Equal(t, id, *at.GuestId)
	ps, err := vs.Id(id).GetPowerState()
	require.NoError(t, err)
	require.Equal(t, "HALTED", *ps.KeyName)
	obj, err := vs.Id(id).Mask("mask[id,provisionDate,activeTransaction[transactionStatus],blockDeviceTemplateGroup[globalIdentifier],primaryBackendIpAddress,primaryIpAddress]").GetObject()
	require.NoError(t, err)
	require.Nil(t, obj.ProvisionDate)
	require.NotNil(t, obj.ActiveTransaction)
	require.Equal(t, guid, *obj.BlockDeviceTemplateGroup.GlobalIdentifier)
	require.NotEmpty(t, *obj.PrimaryBackendIpAddress)
	require.NotEmpty(t, *obj.PrimaryIpAddress)

	// The client's poll loop: provisionDate appears after ProvisionDuration.
	waitFor(t, w.srv, "provisioning", func() bool {
		o, err := vs.Id(id).Mask("mask[provisionDate]").GetObject()
		require.NoError(t, err)
		return o.ProvisionDate != nil
	})
	obj, err = vs.Id(id).Mask("mask[provisionDate,createDate,powerState,activeTransaction,activeTransactions,status]").GetObject()
	require.NoError(t, err)
	require.Equal(t, "RUNNING", *obj.PowerState.KeyName)
	require.Nil(t, obj.ActiveTransaction)
	require.Empty(t, obj.ActiveTransactions)
	require.Equal(t, "ACTIVE", *obj.Status.KeyName)
	require.GreaterOrEqual(t, obj.ProvisionDate.Sub(obj.CreateDate.Time), 5*time.Minute-time.Second, "provisioning takes ProvisionDuration of simulated time")
	pd, err = vs.Id(id).GetProvisionDate()
	require.NoError(t, err)
	require.False(t, pd.IsZero())
	txs, err := vs.Id(id).GetActiveTransactions()
	require.NoError(t, err)
	require.Empty(t, txs)

	// Power operations.
	ok, err := vs.Id(id).PowerOff()
	require.NoError(t, err)
	require.True(t, ok)
	ps, err = vs.Id(id).GetPowerState()
	require.NoError(t, err)
	require.Equal(t, "HALTED", *ps.KeyName)
	_, err = vs.Id(id).PowerOn()
	require.NoError(t, err)

	// Events: Event_Log and Activity Tracker.
	require.Equal(t, []string{slsim.EventGuestCreate, slsim.EventGuestProvision, slsim.EventPowerOn, slsim.EventPowerOff, slsim.EventPowerOn},
		eventNames(t, w, slsim.ObjectCCI))
	var actions []string
	for _, e := range w.sink.all() {
		if e.Target.TypeURI == "audit-log/vsi" {
			actions = append(actions, e.Action+"/"+e.Outcome)
		}
	}
	require.Equal(t, []string{
		slsim.ActionProvision + "/" + simcore.OutcomePending, slsim.ActionProvision + "/" + simcore.OutcomeSuccess,
		slsim.ActionBoot + "/" + simcore.OutcomeSuccess, slsim.ActionPowerOff + "/" + simcore.OutcomeSuccess,
		slsim.ActionPowerOn + "/" + simcore.OutcomeSuccess,
	}, actions)

	// Account listing and filtering.
	acct := services.GetAccountService(w.sess)
	list, err := acct.Filter(filter.Build(filter.Path("virtualGuests.hostname").Eq("web01"))).GetVirtualGuests()
	require.NoError(t, err)
	require.Len(t, list, 1)
	list, err = acct.Filter(filter.Build(filter.Path("virtualGuests.datacenter.name").Eq("lon02"))).GetVirtualGuests()
	require.NoError(t, err)
	require.Empty(t, list)

	ok, err = vs.Id(id).DeleteObject()
	require.NoError(t, err)
	require.True(t, ok)
	_, err = vs.Id(id).GetObject()
	requireSLError(t, err, http.StatusNotFound, "SoftLayer_Exception_ObjectNotFound")
}

func TestCreateObjectValidation(t *testing.T) {
	t.Parallel()
	w := provisionWorld(t)
	guid := activeTemplate(t, w)
	vs := services.GetVirtualGuestService(w.sess)
	for _, tc := range []struct {
		name string
		edit func(*datatypes.Virtual_Guest)
		code string
		msg  string
	}{
		{"no hostname", func(v *datatypes.Virtual_Guest) { v.Hostname = nil }, "SoftLayer_Exception_Public", "'hostname'"},
		{"bad hostname", func(v *datatypes.Virtual_Guest) { v.Hostname = sl.String("web_01") }, "SoftLayer_Exception_InvalidValue", "hostname"},
		{"no domain", func(v *datatypes.Virtual_Guest) { v.Domain = nil }, "SoftLayer_Exception_Public", "'domain'"},
		{"no cpus", func(v *datatypes.Virtual_Guest) { v.StartCpus = nil }, "SoftLayer_Exception_Public", "'startCpus'"},
		{"no memory", func(v *datatypes.Virtual_Guest) { v.MaxMemory = nil }, "SoftLayer_Exception_Public", "'maxMemory'"},
		{"odd memory", func(v *datatypes.Virtual_Guest) { v.MaxMemory = sl.Int(1500) }, "SoftLayer_Exception_InvalidValue", "maxMemory"},
		{"no datacenter", func(v *datatypes.Virtual_Guest) { v.Datacenter = nil }, "SoftLayer_Exception_Public", "'datacenter.name'"},
		{"unknown datacenter", func(v *datatypes.Virtual_Guest) { v.Datacenter.Name = sl.String("mars01") }, "SoftLayer_Exception_Public", "mars01"},
		{"no hourly flag", func(v *datatypes.Virtual_Guest) { v.HourlyBillingFlag = nil }, "SoftLayer_Exception_Public", "'hourlyBillingFlag'"},
		{"no local disk flag", func(v *datatypes.Virtual_Guest) { v.LocalDiskFlag = nil }, "SoftLayer_Exception_Public", "'localDiskFlag'"},
		{"image and os", func(v *datatypes.Virtual_Guest) { v.OperatingSystemReferenceCode = sl.String("UBUNTU_22_64") }, "SoftLayer_Exception_Public", "conflicts"},
		{"no image", func(v *datatypes.Virtual_Guest) { v.BlockDeviceTemplateGroup = nil }, "SoftLayer_Exception_Public", "required"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v := guestTemplate(guid)
			tc.edit(v)
			_, err := vs.CreateObject(v)
			e := requireSLError(t, err, http.StatusInternalServerError, tc.code)
			require.Contains(t, e.Message, tc.msg)
		})
	}
	_, err := vs.CreateObject(guestTemplate("00000000-0000-4000-8000-000000000000"))
	requireSLError(t, err, http.StatusNotFound, "SoftLayer_Exception_ObjectNotFound")
	// Another account cannot provision from this account's template.
	_, err = services.GetVirtualGuestService(w.session(otherKey)).CreateObject(guestTemplate(guid))
	requireSLError(t, err, http.StatusNotFound, "SoftLayer_Exception_ObjectNotFound")
	require.Empty(t, w.srv.Guests())
}

func TestOrders(t *testing.T) {
	t.Parallel()
	w := provisionWorld(t)
	guid := activeTemplate(t, w)
	tmpl, err := services.GetVirtualGuestService(w.sess).GenerateOrderTemplate(guestTemplate(guid))
	require.NoError(t, err)
	require.Equal(t, slsim.OrderComplexType, *tmpl.ComplexType)
	require.Equal(t, slsim.CloudServerPackageID, *tmpl.PackageId)
	require.Equal(t, guid, *tmpl.ImageTemplateGlobalIdentifier)
	require.NotEmpty(t, tmpl.Prices)

	order := &datatypes.Container_Product_Order_Virtual_Guest{}
	order.Container_Product_Order_Hardware_Server.Container_Product_Order = tmpl
	order.Quantity = sl.Int(2)
	order.VirtualGuests = []datatypes.Virtual_Guest{
		{Hostname: sl.String("app1"), Domain: sl.String("example.com")},
		{Hostname: sl.String("app2"), Domain: sl.String("example.com")},
	}
	po := services.GetProductOrderService(w.sess)
	verified, err := po.VerifyOrder(order)
	require.NoError(t, err)
	require.NotNil(t, verified.PostTaxRecurringHourly)
	require.Greater(t, float64(*verified.PostTaxRecurringHourly), 0.0)
	require.Empty(t, w.srv.Guests(), "verifyOrder creates nothing")

	receipt, err := po.PlaceOrder(order, sl.Bool(false))
	require.NoError(t, err)
	require.NotNil(t, receipt.OrderId)
	require.Equal(t, *receipt.OrderId, *receipt.PlacedOrder.Id)
	require.Equal(t, "APPROVED", *receipt.PlacedOrder.Status)
	require.NotEmpty(t, receipt.PlacedOrder.Items)
	require.Len(t, receipt.OrderDetails.VirtualGuests, 2)

	guests := w.srv.Guests()
	require.Len(t, guests, 2)
	// The client finds its guests by hostname, as on the real API.
	list, err := services.GetAccountService(w.sess).Filter(filter.Build(filter.Path("virtualGuests.hostname").Eq("app2"))).
		Mask("mask[id,hostname,maxMemory,startCpus,blockDeviceTemplateGroup.globalIdentifier]").GetVirtualGuests()
	require.NoError(t, err)
	require.Len(t, list, 1)
	require.Equal(t, 4096, *list[0].MaxMemory)
	require.Equal(t, 2, *list[0].StartCpus)
	require.Equal(t, guid, *list[0].BlockDeviceTemplateGroup.GlobalIdentifier)
	waitFor(t, w.srv, "both guests to provision", func() bool {
		for _, g := range w.srv.Guests() {
			if g.ProvisionDate.IsZero() {
				return false
			}
		}
		return true
	})

	// A plain Container_Product_Order (softlayer-go sets its complexType
	// from the Go type) with package 46 is accepted too.
	plain := tmpl
	plain.VirtualGuests = []datatypes.Virtual_Guest{{Hostname: sl.String("app3"), Domain: sl.String("example.com")}}
	_, err = po.VerifyOrder(&plain)
	require.NoError(t, err)

	for _, tc := range []struct {
		name string
		edit func(o *datatypes.Container_Product_Order)
		code string
		msg  string
	}{
		{"no location", func(o *datatypes.Container_Product_Order) { o.Location = nil; o.LocationObject = nil }, "SoftLayer_Exception_Order_InvalidLocation", "no location"},
		{"bad location", func(o *datatypes.Container_Product_Order) { o.Location = sl.String("mars01") }, "SoftLayer_Exception_Order_InvalidLocation", "mars01"},
		{"bad price", func(o *datatypes.Container_Product_Order) {
			o.Prices = append(o.Prices, datatypes.Product_Item_Price{Id: sl.Int(1)})
		}, "SoftLayer_Exception_Order_Item_Invalid", "Price '1'"},
		{"no ram", func(o *datatypes.Container_Product_Order) {
			var keep []datatypes.Product_Item_Price
			for _, p := range o.Prices {
				if *p.Categories[0].CategoryCode != "ram" {
					keep = append(keep, p)
				}
			}
			o.Prices = keep
		}, "SoftLayer_Exception_Order_MissingCategory", "ram"},
		{"quantity mismatch", func(o *datatypes.Container_Product_Order) { o.Quantity = sl.Int(3) }, "SoftLayer_Exception_Public", "quantity"},
		{"bad package", func(o *datatypes.Container_Product_Order) { o.PackageId = sl.Int(835) }, "SoftLayer_Exception_Public", "835"},
		{"unknown image", func(o *datatypes.Container_Product_Order) {
			o.ImageTemplateGlobalIdentifier, o.ImageTemplateId = sl.String("nope"), nil
		}, "SoftLayer_Exception_ObjectNotFound", "nope"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			raw, _ := json.Marshal(tmpl)
			var o datatypes.Container_Product_Order
			require.NoError(t, json.Unmarshal(raw, &o))
			o.VirtualGuests = []datatypes.Virtual_Guest{{Hostname: sl.String("x1"), Domain: sl.String("example.com")}}
			tc.edit(&o)
			_, err := po.VerifyOrder(&o)
			status := http.StatusInternalServerError
			if tc.code == "SoftLayer_Exception_ObjectNotFound" {
				status = http.StatusNotFound
			}
			e := requireSLError(t, err, status, tc.code)
			require.Contains(t, e.Message, tc.msg)
		})
	}
	_, err = po.PlaceOrder(&plain, sl.Bool(true))
	e := requireSLError(t, err, http.StatusInternalServerError, "SoftLayer_Exception_Public")
	require.Contains(t, e.Message, "quote")
}

func TestEventLogFilters(t *testing.T) {
	t.Parallel()
	w := provisionWorld(t)
	guid := activeTemplate(t, w)
	t0 := w.clock.Now()
	w.clock.Advance(time.Hour)
	g, err := services.GetVirtualGuestService(w.sess).CreateObject(guestTemplate(guid))
	require.NoError(t, err)
	waitFor(t, w.srv, "provisioning", func() bool { return !w.srv.Guests()[0].ProvisionDate.IsZero() })

	el := services.GetEventLogService(w.sess)
	all, err := el.GetAllObjects()
	require.NoError(t, err)
	require.Len(t, all, 5) // Import Started, Import Complete, Create, Provision Complete, Power On
	for _, e := range all {
		require.NotNil(t, e.AccountId)
		require.NotNil(t, e.TraceId)
		require.NotNil(t, e.EventCreateDate)
	}

	get := func(f string) []datatypes.Event_Log {
		t.Helper()
		l, err := el.Filter(f).GetAllObjects()
		require.NoError(t, err)
		return l
	}
	require.Len(t, get(filter.Build(filter.Path("objectName").Eq("CCI"))), 3)
	require.Len(t, get(filter.Build(filter.Path("objectName").Eq("Image"))), 2)
	require.Len(t, get(filter.Build(filter.Path("eventName").Eq(slsim.EventGuestCreate))), 1)
	require.Len(t, get(filter.Build(filter.Path("objectId").Eq(*g.Id))), 3)
	require.Len(t, get(filter.Build(filter.Path("eventName").Contains("import"))), 2)
	require.Len(t, get(filter.Build(filter.Path("userType").Eq("CUSTOMER"))), 2)
	cut := t0.Add(30 * time.Minute).Format(time.RFC3339)
	require.Len(t, get(filter.Build(filter.Path("eventCreateDate").DateAfter(cut))), 3)
	require.Len(t, get(filter.Build(filter.Path("eventCreateDate").DateBefore(cut))), 2)
	require.Len(t, get(filter.Build(filter.Path("eventCreateDate").DateBetween(t0.Add(-time.Hour).Format(time.RFC3339), cut))), 2)
	require.Len(t, get(`{"eventCreateDate":{"operation":"greaterThanDate","options":[{"name":"date","value":["`+t0.Add(30*time.Minute).Format("01/02/2006 15:04:05")+`"]}]}}`), 3)
	require.Len(t, get(filter.Build(filter.Path("objectName").Eq("CCI"), filter.Path("eventName").Eq(slsim.EventPowerOn))), 1)
	desc := get(`{"eventCreateDate":{"operation":"orderBy","options":[{"name":"sort","value":["DESC"]}]}}`)
	require.Equal(t, slsim.EventImportStarted, *desc[len(desc)-1].EventName)
	require.NotEqual(t, slsim.EventImportStarted, *desc[0].EventName)

	opts := &sl.Options{Limit: sl.Int(2), Offset: sl.Int(1), Filter: filter.Build(filter.Path("objectName").Eq("CCI"))}
	var page []datatypes.Event_Log
	require.NoError(t, w.sess.DoRequest("SoftLayer_Event_Log", "getAllObjects", nil, opts, &page))
	require.Len(t, page, 2)
	require.Equal(t, 3, opts.TotalItems)
	require.Equal(t, slsim.EventGuestProvision, *page[0].EventName)

	names, err := el.GetAllEventNames(sl.String("Image"))
	require.NoError(t, err)
	require.Equal(t, []string{slsim.EventImportComplete, slsim.EventImportStarted}, names)
	objs, err := el.GetAllEventObjectNames()
	require.NoError(t, err)
	require.Contains(t, objs, "CCI")

	// Another account sees none of them.
	other, err := services.GetEventLogService(w.session(otherKey)).GetAllObjects()
	require.NoError(t, err)
	require.Empty(t, other)
}
