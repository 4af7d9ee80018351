package slsim

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/softlayer/softlayer-go/datatypes"

	"github.com/e2eimage/e2eimage/internal/cloudsim/simcore"
)

// CloudServerPackageID is the product package of public virtual servers
// (keyName CLOUD_SERVER), the only package this simulator sells.
const CloudServerPackageID = 46

// OrderComplexType is the order container type placeOrder and verifyOrder
// accept.
const OrderComplexType = "SoftLayer_Container_Product_Order_Virtual_Guest"

// catalogPrice is one orderable price of the simulated CLOUD_SERVER package.
// Ids and fees are the simulator's, not IBM's.
type catalogPrice struct {
	id       int
	keyName  string
	category string
	desc     string
	capacity int     // cores, GB of RAM or disk, Mbps
	hourly   float64 // USD per hour
}

func catalog() []catalogPrice {
	c := []catalogPrice{
		{200001, "GUEST_CORE_1", "guest_core", "1 x 2.0 GHz or higher Core", 1, 0.021},
		{200002, "GUEST_CORE_2", "guest_core", "2 x 2.0 GHz or higher Cores", 2, 0.042},
		{200004, "GUEST_CORE_4", "guest_core", "4 x 2.0 GHz or higher Cores", 4, 0.084},
		{200008, "GUEST_CORE_8", "guest_core", "8 x 2.0 GHz or higher Cores", 8, 0.168},
		{200016, "GUEST_CORE_16", "guest_core", "16 x 2.0 GHz or higher Cores", 16, 0.336},
		{200032, "GUEST_CORE_32", "guest_core", "32 x 2.0 GHz or higher Cores", 32, 0.672},
		{200056, "GUEST_CORE_56", "guest_core", "56 x 2.0 GHz or higher Cores", 56, 1.176},
		{210001, "RAM_1_GB", "ram", "1 GB", 1, 0.015},
		{210002, "RAM_2_GB", "ram", "2 GB", 2, 0.03},
		{210004, "RAM_4_GB", "ram", "4 GB", 4, 0.06},
		{210008, "RAM_8_GB", "ram", "8 GB", 8, 0.12},
		{210016, "RAM_16_GB", "ram", "16 GB", 16, 0.24},
		{210032, "RAM_32_GB", "ram", "32 GB", 32, 0.48},
		{210064, "RAM_64_GB", "ram", "64 GB", 64, 0.96},
		{210128, "RAM_128_GB", "ram", "128 GB", 128, 1.92},
		{210242, "RAM_242_GB", "ram", "242 GB", 242, 3.63},
		{220025, "GUEST_DISK_25_GB_SAN", "guest_disk0", "25 GB (SAN)", 25, 0},
		{220100, "GUEST_DISK_100_GB_SAN", "guest_disk0", "100 GB (SAN)", 100, 0.005},
		{230100, "100_MBPS_PUBLIC_PRIVATE_NETWORK_UPLINKS", "port_speed", "100 Mbps Public & Private Network Uplinks", 100, 0},
		{231000, "1_GBPS_PUBLIC_PRIVATE_NETWORK_UPLINKS", "port_speed", "1 Gbps Public & Private Network Uplinks", 1000, 0.04},
		{240000, "BANDWIDTH_0_GB_2", "bandwidth", "0 GB Bandwidth Allotment", 0, 0},
		{250001, "1_IP_ADDRESS", "pri_ip_addresses", "1 IP Address", 1, 0},
		{260001, "REBOOT_REMOTE_CONSOLE", "remote_management", "Reboot / Remote Console", 0, 0},
		{270001, "MONITORING_HOST_PING", "monitoring", "Host Ping", 0, 0},
		{280001, "NOTIFICATION_EMAIL_AND_TICKET", "notification", "Email and Ticket", 0, 0},
		{290001, "AUTOMATED_NOTIFICATION", "response", "Automated Notification", 0, 0},
		{300001, "UNLIMITED_SSL_VPN_USERS_1_PPTP_VPN_USER_PER_ACCOUNT", "vpn_management", "Unlimited SSL VPN Users & 1 PPTP VPN User per account", 0, 0},
		{310001, "NESSUS_VULNERABILITY_ASSESSMENT_REPORTING", "vulnerability_scanner", "Nessus Vulnerability Assessment & Reporting", 0, 0},
	}
	for i, o := range vhdImportOS {
		c = append(c, catalogPrice{400000 + i, "OS_" + o.code, "os", o.name + " " + o.version, 0, 0})
	}
	return c
}

// standardCategories are priced at zero and added by generateOrderTemplate.
var standardCategories = []string{"bandwidth", "pri_ip_addresses", "remote_management", "monitoring",
	"notification", "response", "vpn_management", "vulnerability_scanner"}

func findPrice(match func(catalogPrice) bool) (catalogPrice, bool) {
	for _, p := range catalog() {
		if match(p) {
			return p, true
		}
	}
	return catalogPrice{}, false
}

func (p catalogPrice) datatype() datatypes.Product_Item_Price {
	fee := datatypes.Float64(p.hourly)
	zero := datatypes.Float64(0)
	return datatypes.Product_Item_Price{
		Id: ptr(p.id), HourlyRecurringFee: &fee, RecurringFee: &zero, SetupFee: &zero, OneTimeFee: &zero,
		Item:       &datatypes.Product_Item{KeyName: ptr(p.keyName), Description: ptr(p.desc), Capacity: ptr(datatypes.Float64(p.capacity))},
		Categories: []datatypes.Product_Item_Category{{CategoryCode: ptr(p.category)}},
	}
}

func orderService() *service {
	return &service{methods: map[string]method{
		"verifyorder": {fn: (*Server).verifyOrder},
		"placeorder":  {fn: (*Server).placeOrder},
	}}
}

// generateOrderTemplate serves SoftLayer_Virtual_Guest::generateOrderTemplate:
// the order container createObject would place, for verifyOrder/placeOrder.
func (s *Server) generateOrderTemplate(c *call) (any, error) {
	var v datatypes.Virtual_Guest
	ok, err := c.param(0, &v)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, errPublic("generateOrderTemplate needs a SoftLayer_Virtual_Guest template parameter.")
	}
	sp, err := s.validateGuest(c, &v)
	if err != nil {
		return nil, err
	}
	var prices []catalogPrice
	add := func(match func(catalogPrice) bool, what string) error {
		p, ok := findPrice(match)
		if !ok {
			return errPublic("No price is available for %s.", what)
		}
		prices = append(prices, p)
		return nil
	}
	if err := add(func(p catalogPrice) bool { return p.category == "guest_core" && p.capacity == sp.cpus }, fmt.Sprintf("%d cores", sp.cpus)); err != nil {
		return nil, err
	}
	if err := add(func(p catalogPrice) bool { return p.category == "ram" && p.capacity*1024 == sp.memory }, fmt.Sprintf("%d MB of memory", sp.memory)); err != nil {
		return nil, err
	}
	if err := add(func(p catalogPrice) bool { return p.category == "port_speed" && p.capacity == sp.portSpeed }, fmt.Sprintf("a %d Mbps port", sp.portSpeed)); err != nil {
		return nil, err
	}
	if sp.templateID == 0 {
		if err := add(func(p catalogPrice) bool { return p.keyName == "OS_"+sp.osCode }, sp.osCode); err != nil {
			return nil, err
		}
		if err := add(func(p catalogPrice) bool { return p.keyName == "GUEST_DISK_25_GB_SAN" }, "a boot disk"); err != nil {
			return nil, err
		}
	}
	for _, cat := range standardCategories {
		if err := add(func(p catalogPrice) bool { return p.category == cat }, cat); err != nil {
			return nil, err
		}
	}
	o := datatypes.Container_Product_Order_Virtual_Guest{}
	base := &o.Container_Product_Order_Hardware_Server.Container_Product_Order
	base.ComplexType = ptr(OrderComplexType)
	base.PackageId = ptr(CloudServerPackageID)
	base.Location = ptr(strconv.Itoa(s.locs[sp.dc]))
	base.LocationObject = s.location(sp.dc)
	base.Quantity = ptr(1)
	base.UseHourlyPricing = ptr(sp.hourly)
	base.VirtualGuests = []datatypes.Virtual_Guest{{Hostname: ptr(sp.hostname), Domain: ptr(sp.domain)}}
	if sp.templateID != 0 {
		base.ImageTemplateGlobalIdentifier = ptr(sp.templateGUID)
		base.ImageTemplateId = ptr(sp.templateID)
	}
	fillPrices(base, prices, 1)
	return o, nil
}

func fillPrices(o *datatypes.Container_Product_Order, prices []catalogPrice, quantity int) {
	o.Prices = o.Prices[:0]
	total := 0.0
	for _, p := range prices {
		o.Prices = append(o.Prices, p.datatype())
		total += p.hourly
	}
	total *= float64(quantity)
	h := datatypes.Float64(total)
	zero := datatypes.Float64(0)
	o.PostTaxRecurringHourly, o.PreTaxRecurringHourly = &h, &h
	o.PostTaxRecurring, o.PreTaxRecurring = &h, &h
	o.PostTaxSetup, o.PreTaxSetup = &zero, &zero
}

// orderSpec is a validated order.
type orderSpec struct {
	container datatypes.Container_Product_Order_Virtual_Guest
	prices    []catalogPrice
	guests    []*guestSpec
}

// validateOrder checks a SoftLayer_Container_Product_Order_Virtual_Guest.
// Accepted subset: packageId 46; location as a datacenter name or location
// id; prices by id or item.keyName from the simulated catalog, with one
// guest_core and one ram price (plus os and guest_disk0 when no image
// template is given); quantity equal to the number of virtualGuests (each
// with hostname and domain); imageTemplateGlobalIdentifier or
// imageTemplateId of an Active template; useHourlyPricing.
func (s *Server) validateOrder(c *call) (*orderSpec, error) {
	var o datatypes.Container_Product_Order_Virtual_Guest
	ok, err := c.param(0, &o)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, errPublic("%s needs an order container parameter.", c.method)
	}
	base := &o.Container_Product_Order_Hardware_Server.Container_Product_Order
	// softlayer-go sets complexType from the Go type it is given, so a
	// generateOrderTemplate result passed back as a *Container_Product_Order
	// arrives as SoftLayer_Container_Product_Order; package 46 makes it a
	// virtual guest order either way.
	if ct := deref(base.ComplexType); ct != OrderComplexType && ct != "SoftLayer_Container_Product_Order" {
		if ct == "" {
			return nil, errPublic("The order container has no complexType; send %s.", OrderComplexType)
		}
		return nil, errPublic("Order containers of type %s are not supported by this simulator; send %s.", ct, OrderComplexType)
	}
	if len(base.OrderContainers) > 0 {
		return nil, errPublic("Multi-container orders (orderContainers) are not supported by this simulator.")
	}
	if pid := deref(base.PackageId); pid != CloudServerPackageID {
		if base.PackageId == nil {
			return nil, errPublic("The order has no packageId; virtual servers are package %d.", CloudServerPackageID)
		}
		return nil, errPublic("Package %d is not available; this simulator sells package %d (CLOUD_SERVER).", pid, CloudServerPackageID)
	}
	loc := deref(base.Location)
	if loc == "" && base.LocationObject != nil {
		loc = deref(base.LocationObject.Name)
	}
	dc := ""
	for name, id := range s.locs {
		if loc == name || loc == strconv.Itoa(id) {
			dc = name
		}
	}
	if dc == "" {
		if loc == "" {
			return nil, &apiError{http.StatusInternalServerError, ExceptionOrderInvalidLocation, "The order has no location."}
		}
		return nil, &apiError{http.StatusInternalServerError, ExceptionOrderInvalidLocation,
			fmt.Sprintf("The location '%s' is not available for this order (available: %s).", loc, strings.Join(s.cfg.Datacenters, ", "))}
	}
	spec := &orderSpec{}
	seen := map[string]catalogPrice{}
	for i, p := range base.Prices {
		var cp catalogPrice
		var found bool
		switch {
		case p.Id != nil:
			cp, found = findPrice(func(x catalogPrice) bool { return x.id == *p.Id })
		case p.Item != nil && p.Item.KeyName != nil:
			cp, found = findPrice(func(x catalogPrice) bool { return x.keyName == *p.Item.KeyName })
		default:
			return nil, errPublic("Price %d of the order has neither an id nor an item.keyName.", i+1)
		}
		if !found {
			what := fmt.Sprint(deref(p.Id))
			if p.Id == nil {
				what = deref(p.Item.KeyName)
			}
			return nil, &apiError{http.StatusInternalServerError, ExceptionOrderItemInvalid,
				fmt.Sprintf("Price '%s' is not valid for package %d.", what, CloudServerPackageID)}
		}
		if prev, dup := seen[cp.category]; dup {
			return nil, errPublic("The order has two prices for category %s (%s and %s).", cp.category, prev.keyName, cp.keyName)
		}
		seen[cp.category] = cp
		spec.prices = append(spec.prices, cp)
	}
	for _, cat := range []string{"guest_core", "ram"} {
		if _, ok := seen[cat]; !ok {
			return nil, &apiError{http.StatusInternalServerError, ExceptionOrderMissingCategory, fmt.Sprintf("The order has no price for required category %s.", cat)}
		}
	}
	guid, tid := deref(base.ImageTemplateGlobalIdentifier), deref(base.ImageTemplateId)
	templateID := 0
	if guid != "" || tid != 0 {
		s.mu.Lock()
		templateID, err = s.activeTemplate(c.acct, guid, tid, dc)
		s.mu.Unlock()
		if err != nil {
			return nil, err
		}
	} else {
		for _, cat := range []string{"os", "guest_disk0"} {
			if _, ok := seen[cat]; !ok {
				return nil, &apiError{http.StatusInternalServerError, ExceptionOrderMissingCategory,
					fmt.Sprintf("The order has no image template and no price for required category %s.", cat)}
			}
		}
	}
	if len(base.VirtualGuests) == 0 {
		return nil, errPublic("The order has no virtualGuests (each needs hostname and domain).")
	}
	qty := deref(base.Quantity)
	if base.Quantity == nil {
		qty = len(base.VirtualGuests)
		base.Quantity = ptr(qty)
	}
	if qty != len(base.VirtualGuests) {
		return nil, errPublic("The order quantity (%d) does not match the number of virtualGuests (%d).", qty, len(base.VirtualGuests))
	}
	port := 100
	if p, ok := seen["port_speed"]; ok {
		port = p.capacity
	}
	osCode := ""
	if p, ok := seen["os"]; ok {
		osCode = strings.TrimPrefix(p.keyName, "OS_")
	}
	for _, vg := range base.VirtualGuests {
		host, domain := deref(vg.Hostname), deref(vg.Domain)
		if err := validHostDomain(host, domain); err != nil {
			return nil, err
		}
		spec.guests = append(spec.guests, &guestSpec{
			hostname: host, domain: domain, cpus: seen["guest_core"].capacity, memory: seen["ram"].capacity * 1024,
			dc: dc, hourly: deref(base.UseHourlyPricing), localDisk: false, privateOnly: deref(vg.PrivateNetworkOnlyFlag),
			templateID: templateID, osCode: osCode, portSpeed: port,
		})
	}
	base.LocationObject = s.location(dc)
	fillPrices(base, spec.prices, qty)
	spec.container = o
	return spec, nil
}

func (s *Server) verifyOrder(c *call) (any, error) {
	spec, err := s.validateOrder(c)
	if err != nil {
		return nil, err
	}
	return spec.container, nil
}

// placeOrder creates the order's guests as createObject would and returns
// the receipt. To find the guests, list SoftLayer_Account::getVirtualGuests
// filtered by hostname and domain, as with the real API.
func (s *Server) placeOrder(c *call) (any, error) {
	spec, err := s.validateOrder(c)
	if err != nil {
		return nil, err
	}
	var quote bool
	if _, err := c.param(1, &quote); err != nil {
		return nil, err
	}
	if quote {
		return nil, errPublic("Saving an order as a quote is not supported by this simulator.")
	}
	var events []simcore.Event
	var guests []*guest
	for _, gs := range spec.guests {
		g, evs, err := s.startGuest(c, gs)
		if err != nil {
			s.emit(events...)
			return nil, err
		}
		events = append(events, evs...)
		guests = append(guests, g)
	}
	s.emit(events...)

	s.mu.Lock()
	defer s.mu.Unlock()
	s.ids.order++
	now := s.clock.Now()
	order := datatypes.Billing_Order{
		Id: ptr(s.ids.order), AccountId: ptr(c.acct.id), CreateDate: slTime(now), ModifyDate: slTime(now),
		OrderApprovalDate: slTime(now), Status: ptr("APPROVED"), UserRecordId: ptr(c.userID),
	}
	for _, g := range guests {
		for _, p := range spec.prices {
			s.ids.orderItem++
			fee := datatypes.Float64(p.hourly)
			order.Items = append(order.Items, datatypes.Billing_Order_Item{
				Id: ptr(s.ids.orderItem), Description: ptr(p.desc), CategoryCode: ptr(p.category),
				HostName: ptr(g.hostname), DomainName: ptr(g.domain), HourlyRecurringFee: &fee,
				ItemPriceId: ptr(datatypes.Float64(p.id)), Quantity: ptr(1), Location: s.location(g.dc),
			})
		}
	}
	details := spec.container.Container_Product_Order_Hardware_Server.Container_Product_Order
	return datatypes.Container_Product_Order_Receipt{
		OrderId:      ptr(s.ids.order),
		OrderDate:    slTime(now),
		PlacedOrder:  &order,
		OrderDetails: &details,
	}, nil
}
