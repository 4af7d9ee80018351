package classic

import (
	"context"
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/softlayer/softlayer-go/datatypes"
	"github.com/softlayer/softlayer-go/filter"
	"github.com/softlayer/softlayer-go/services"
	"github.com/softlayer/softlayer-go/session"
)

// TemplateRef names an image template by id or by global identifier (the
// UUID the order takes). ID wins when both are set.
type TemplateRef struct {
	ID               int
	GlobalIdentifier string
}

// ServerSpec describes a virtual server ordered from an image template
// (SoftLayer_Virtual_Guest::createObject, ../docs/CLOUD.md section 5.3).
type ServerSpec struct {
	// Hostname and Domain make the server's FQDN. Required.
	Hostname string
	Domain   string
	// Datacenter is the data center's short name, e.g. "dal13". Empty
	// orders in the template's data center (an imported template is in
	// the import data center of its region). Another data center makes
	// CreateServer copy the template there first (addLocations) and wait
	// for the copy: an image template can be provisioned only where it
	// has a copy (SLDN "Managing Image Templates": setting locations "is
	// useful to do if you need to provision anything with this template,
	// in the selected datacenter").
	Datacenter string
	// CPUs and MemoryMB size the server (startCpus, maxMemory). Required.
	CPUs     int
	MemoryMB int
	// Template is the image template to boot from; it must be Active
	// with its disks in place. Required.
	Template TemplateRef
	// Monthly selects monthly billing; the zero value orders hourly.
	Monthly bool
	// LocalDisk selects local disks instead of SAN (localDiskFlag).
	LocalDisk bool
	// NetworkSpeedMbps is the public/private port speed (10, 100, 1000);
	// 0 leaves the default.
	NetworkSpeedMbps int
	// PrivateNetworkOnly orders no public interface.
	PrivateNetworkOnly bool
	// DedicatedHost orders a single-tenant host (dedicatedAccountHostOnlyFlag).
	DedicatedHost bool
	// SSHKeyIDs are ids of SSH keys stored in the account.
	SSHKeyIDs []int
	// UserData is handed to cloud-init on first boot.
	UserData string
}

// hostnameRe follows RFC 1123 labels, as the classic order form does.
var hostnameRe = regexp.MustCompile(`^[a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?$`)

// dcRe matches data center short names: letters and digits, e.g. dal13.
var dcRe = regexp.MustCompile(`^[a-zA-Z]{3}[0-9]{2}$`)

func (s *ServerSpec) validate() error {
	bad := func(field, format string, a ...any) error {
		return &InvalidServerError{Field: field, Reason: fmt.Sprintf(format, a...)}
	}
	switch {
	case !hostnameRe.MatchString(s.Hostname):
		return bad("Hostname", "%q is not a host name (letters, digits and '-', at most 63)", s.Hostname)
	case s.Domain == "" || !strings.Contains(s.Domain, "."):
		return bad("Domain", "%q is not a domain name", s.Domain)
	case s.Datacenter != "" && !dcRe.MatchString(s.Datacenter):
		return bad("Datacenter", "%q is not a data center short name such as dal13", s.Datacenter)
	case s.CPUs <= 0:
		return bad("CPUs", "must be positive")
	case s.MemoryMB <= 0:
		return bad("MemoryMB", "must be positive")
	case s.Template.ID <= 0 && s.Template.GlobalIdentifier == "":
		return bad("Template", "no id or global identifier")
	case s.NetworkSpeedMbps < 0:
		return bad("NetworkSpeedMbps", "negative")
	}
	return nil
}

// guest builds the createObject template for data center dc.
func (s *ServerSpec) guest(templateGUID, dc string) *datatypes.Virtual_Guest {
	g := &datatypes.Virtual_Guest{
		Hostname:          sp(s.Hostname),
		Domain:            sp(s.Domain),
		StartCpus:         ip(s.CPUs),
		MaxMemory:         ip(s.MemoryMB),
		Datacenter:        &datatypes.Location{Name: sp(dc)},
		HourlyBillingFlag: bp(!s.Monthly),
		LocalDiskFlag:     bp(s.LocalDisk),
		BlockDeviceTemplateGroup: &datatypes.Virtual_Guest_Block_Device_Template_Group{
			GlobalIdentifier: sp(templateGUID),
		},
	}
	// The optional flags are sent only when set, as softlayer-python's
	// "vs create" does (VSManager._generate_create_dict).
	if s.PrivateNetworkOnly {
		g.PrivateNetworkOnlyFlag = bp(true)
	}
	if s.DedicatedHost {
		g.DedicatedAccountHostOnlyFlag = bp(true)
	}
	if s.NetworkSpeedMbps > 0 {
		g.NetworkComponents = []datatypes.Virtual_Guest_Network_Component{{MaxSpeed: ip(s.NetworkSpeedMbps)}}
	}
	for _, id := range s.SSHKeyIDs {
		g.SshKeys = append(g.SshKeys, datatypes.Security_Ssh_Key{Id: ip(id)})
	}
	if s.UserData != "" {
		g.UserData = []datatypes.Virtual_Guest_Attribute{{Value: sp(s.UserData)}}
	}
	return g
}

// Server is a virtual server (SoftLayer_Virtual_Guest).
type Server struct {
	ID               int
	GlobalIdentifier string
	Hostname         string
	Domain           string
	FQDN             string
	PrimaryIP        string // public; "" for a private-only server or before provisioning
	BackendIP        string // private network
	Datacenter       string
	// TemplateID and TemplateGlobalIdentifier name the image template the
	// server was ordered from.
	TemplateID               int
	TemplateGlobalIdentifier string
	// ProvisionDate is zero until the server is provisioned.
	ProvisionDate time.Time
	// Transaction is the name of the running transaction's status, "" when none.
	Transaction string
	// TransactionDetail is its friendly name.
	TransactionDetail string
}

// Provisioned reports whether provisioning has finished (provisionDate set).
func (s *Server) Provisioned() bool { return !s.ProvisionDate.IsZero() }

const guestMask = "mask[id,globalIdentifier,hostname,domain,fullyQualifiedDomainName,primaryIpAddress," +
	"primaryBackendIpAddress,datacenter[name],provisionDate,blockDeviceTemplateGroup[id,globalIdentifier]," +
	"activeTransaction[transactionStatus]]"

func serverFrom(g datatypes.Virtual_Guest) Server {
	s := Server{
		ID:               num(g.Id),
		GlobalIdentifier: str(g.GlobalIdentifier),
		Hostname:         str(g.Hostname),
		Domain:           str(g.Domain),
		FQDN:             str(g.FullyQualifiedDomainName),
		PrimaryIP:        str(g.PrimaryIpAddress),
		BackendIP:        str(g.PrimaryBackendIpAddress),
		ProvisionDate:    tm(g.ProvisionDate),
	}
	if s.FQDN == "" && s.Hostname != "" && s.Domain != "" {
		s.FQDN = s.Hostname + "." + s.Domain
	}
	if g.Datacenter != nil {
		s.Datacenter = str(g.Datacenter.Name)
	}
	if t := g.BlockDeviceTemplateGroup; t != nil {
		s.TemplateID, s.TemplateGlobalIdentifier = num(t.Id), str(t.GlobalIdentifier)
	}
	if tx := g.ActiveTransaction; tx != nil {
		s.Transaction = "UNKNOWN"
		if ts := tx.TransactionStatus; ts != nil {
			if n := str(ts.Name); n != "" {
				s.Transaction = n
			}
			s.TransactionDetail = str(ts.FriendlyName)
		}
	}
	return s
}

// resolveTemplate reads the template ref names.
func (c *Client) resolveTemplate(ctx context.Context, ref TemplateRef) (*Template, error) {
	if ref.ID > 0 {
		return c.GetTemplate(ctx, ref.ID)
	}
	return c.findTemplate(ctx, "globalIdentifier", ref.GlobalIdentifier)
}

func (c *Client) findTemplate(ctx context.Context, field, value string) (*Template, error) {
	var gs []datatypes.Virtual_Guest_Block_Device_Template_Group
	f := filter.Build(filter.Path("privateBlockDeviceTemplateGroups." + field).Eq(value))
	err := c.read(ctx, "SoftLayer_Account::getPrivateBlockDeviceTemplateGroups", func(s *session.Session) (err error) {
		gs, err = services.GetAccountService(s).Mask(templateMask).Filter(f).GetPrivateBlockDeviceTemplateGroups()
		return err
	})
	if err != nil {
		return nil, err
	}
	var found []Template
	for _, g := range gs {
		t := templateFrom(g)
		if (field == "name" && t.Name == value) || (field == "globalIdentifier" && t.GlobalIdentifier == value) {
			found = append(found, t)
		}
	}
	switch len(found) {
	case 0:
		return nil, fmt.Errorf("classic: image template with %s %q: %w", field, value, ErrNotFound)
	case 1:
		return &found[0], nil
	}
	return nil, fmt.Errorf("classic: image template with %s %q: %w (%d templates)", field, value, ErrAmbiguous, len(found))
}

// OrderQuote is what a verified order would cost; nothing was ordered.
type OrderQuote struct {
	Location         string
	TemplateID       int
	TemplateGUID     string
	HourlyRecurring  float64 // per hour, for hourly orders
	MonthlyRecurring float64 // per month, for monthly orders
	Setup            float64
	// Items describes the priced items, e.g. "2 x 2.0 GHz or higher Cores".
	Items []string
}

// VerifyServer checks an order without placing it, and without charge:
// the template must be Active with a ready copy in the data center (see
// ServerSpec.Datacenter), then generateOrderTemplate turns the spec into a
// product order and Product_Order::verifyOrder checks it. This is the dry
// run of CreateServer and OrderServer. It copies nothing: when the
// template would first have to be copied, it returns a *PlacementError.
func (c *Client) VerifyServer(ctx context.Context, spec ServerSpec) (*OrderQuote, error) {
	if err := spec.validate(); err != nil {
		return nil, err
	}
	t, err := c.resolveTemplate(ctx, spec.Template)
	if err != nil {
		return nil, err
	}
	p, err := placement(t, spec.Datacenter)
	if err != nil {
		return nil, err
	}
	if p.Copy {
		return nil, &PlacementError{TemplateID: t.ID, Datacenter: p.Datacenter, TemplateDatacenters: p.TemplateDatacenters,
			Reason: "CreateServer copies it there first; VerifyServer, a dry run, does not"}
	}
	return c.verify(ctx, &spec, t, p.Datacenter)
}

func (c *Client) verify(ctx context.Context, spec *ServerSpec, t *Template, dc string) (*OrderQuote, error) {
	guest := spec.guest(t.GlobalIdentifier, dc)
	var order datatypes.Container_Product_Order
	err := c.read(ctx, "SoftLayer_Virtual_Guest::generateOrderTemplate", func(s *session.Session) (err error) {
		order, err = services.GetVirtualGuestService(s).GenerateOrderTemplate(guest)
		return err
	})
	if err != nil {
		return nil, err
	}
	// verifyOrder takes the order as the container type that
	// generateOrderTemplate describes (softlayer-go's SetComplexType names
	// the complexType after the Go type), so keep the virtual guest
	// order's fields by going through its own type.
	raw, err := json.Marshal(order)
	if err != nil {
		return nil, fmt.Errorf("classic: encoding the order template: %w", err)
	}
	var vgOrder datatypes.Container_Product_Order_Virtual_Guest
	if err := json.Unmarshal(raw, &vgOrder); err != nil {
		return nil, fmt.Errorf("classic: decoding the order template: %w", err)
	}
	const op = "SoftLayer_Product_Order::verifyOrder"
	var rawVerified json.RawMessage
	err = c.read(ctx, op, func(s *session.Session) error {
		if err := datatypes.SetComplexType(&vgOrder); err != nil {
			return err
		}
		return callRaw(s, "SoftLayer_Product_Order", "verifyOrder", nil, []any{&vgOrder}, &rawVerified)
	})
	if err != nil {
		return nil, err
	}
	var verified datatypes.Container_Product_Order
	if err := c.decodeAnswer(op, rawVerified, &verified, []string{"prices"}); err != nil {
		return nil, err
	}
	q := &OrderQuote{
		Location:         str(verified.Location),
		TemplateID:       t.ID,
		TemplateGUID:     t.GlobalIdentifier,
		HourlyRecurring:  f64(verified.PostTaxRecurringHourly),
		MonthlyRecurring: f64(verified.PostTaxRecurringMonthly),
		Setup:            f64(verified.PostTaxSetup),
	}
	for _, p := range verified.Prices {
		if p.Item != nil && p.Item.Description != nil {
			q.Items = append(q.Items, *p.Item.Description)
		}
	}
	return q, nil
}

func f64(p *datatypes.Float64) float64 {
	if p == nil {
		return 0
	}
	return float64(*p)
}

// CreateServer orders a server from an Active image template. When the
// order asks for a data center where the template has no copy, it first
// copies the template there (CopyTemplate: addLocations, then a wait that
// takes as long as the copy). Then it verifies the order as VerifyServer
// does and calls createObject once (never retried: a repeated createObject
// orders and bills a second server). It returns the new server before it
// is provisioned; wait with WaitServer. After an error whose outcome is
// unknown (a timeout), look for the server with FindServer before ordering
// again.
func (c *Client) CreateServer(ctx context.Context, spec ServerSpec, opts ...WaitOption) (*Server, error) {
	if err := spec.validate(); err != nil {
		return nil, err
	}
	t, err := c.resolveTemplate(ctx, spec.Template)
	if err != nil {
		return nil, err
	}
	p, err := placement(t, spec.Datacenter)
	if err != nil {
		return nil, err
	}
	if p.Copy {
		if t, err = c.CopyTemplate(ctx, t.ID, p.Datacenter, opts...); err != nil {
			return nil, fmt.Errorf("classic: copying image template to %s before the order: %w", p.Datacenter, err)
		}
	}
	if _, err := c.verify(ctx, &spec, t, p.Datacenter); err != nil {
		return nil, err
	}
	guest := spec.guest(t.GlobalIdentifier, p.Datacenter)
	const op = "SoftLayer_Virtual_Guest::createObject"
	var raw json.RawMessage
	err = c.write(ctx, op, func(s *session.Session) error {
		return callRaw(s, "SoftLayer_Virtual_Guest", "createObject", nil, []any{guest}, &raw)
	})
	if err != nil {
		return nil, err
	}
	var g datatypes.Virtual_Guest
	if err := c.decodeAnswer(op, raw, &g, []string{"id"}); err != nil {
		return nil, err
	}
	srv := serverFrom(g)
	srv.TemplateID, srv.TemplateGlobalIdentifier = t.ID, t.GlobalIdentifier
	c.opts.logger.DebugContext(ctx, "classic: server ordered", "id", srv.ID, "hostname", srv.Hostname, "template", t.ID)
	return &srv, nil
}

// GetServer reads a virtual server.
func (c *Client) GetServer(ctx context.Context, id int) (*Server, error) {
	var g datatypes.Virtual_Guest
	err := c.read(ctx, "SoftLayer_Virtual_Guest::getObject", func(s *session.Session) (err error) {
		g, err = services.GetVirtualGuestService(s).Id(id).Mask(guestMask).GetObject()
		return err
	})
	if err != nil {
		return nil, err
	}
	srv := serverFrom(g)
	return &srv, nil
}

// WaitServer polls a server until it is provisioned (provisionDate set) and
// returns it, with its IP addresses.
func (c *Client) WaitServer(ctx context.Context, id int, opts ...WaitOption) (*Server, error) {
	wo := c.waitOptions(opts)
	var last *Server
	err := c.poll(ctx, wo, fmt.Sprintf("server %d", id), func() (string, bool, error) {
		s, err := c.GetServer(ctx, id)
		if err != nil {
			return "", false, err
		}
		last = s
		if wo.onServer != nil {
			wo.onServer(*s)
		}
		return s.Transaction, s.Provisioned(), nil
	})
	return last, err
}

// OrderServer is CreateServer followed by WaitServer. When the wait fails,
// the server that was ordered is returned with the error so that a caller
// can resume waiting (or cancel it); it is nil only if nothing was ordered.
func (c *Client) OrderServer(ctx context.Context, spec ServerSpec, opts ...WaitOption) (*Server, error) {
	srv, err := c.CreateServer(ctx, spec, opts...)
	if err != nil {
		return nil, err
	}
	done, err := c.WaitServer(ctx, srv.ID, opts...)
	if done == nil {
		done = srv
	}
	if done.TemplateID == 0 {
		done.TemplateID, done.TemplateGlobalIdentifier = srv.TemplateID, srv.TemplateGlobalIdentifier
	}
	return done, err
}

// FindServer returns the account's virtual server with the given hostname
// and domain (Account::getVirtualGuests filtered on both). It returns an
// error matching ErrNotFound when there is none and ErrAmbiguous when there
// are several.
func (c *Client) FindServer(ctx context.Context, hostname, domain string) (*Server, error) {
	var gs []datatypes.Virtual_Guest
	f := filter.Build(
		filter.Path("virtualGuests.hostname").Eq(hostname),
		filter.Path("virtualGuests.domain").Eq(domain),
	)
	err := c.read(ctx, "SoftLayer_Account::getVirtualGuests", func(s *session.Session) (err error) {
		gs, err = services.GetAccountService(s).Mask(guestMask).Filter(f).GetVirtualGuests()
		return err
	})
	if err != nil {
		return nil, err
	}
	var found []Server
	for _, g := range gs {
		if s := serverFrom(g); s.Hostname == hostname && s.Domain == domain {
			found = append(found, s)
		}
	}
	switch len(found) {
	case 0:
		return nil, fmt.Errorf("classic: server %s.%s: %w", hostname, domain, ErrNotFound)
	case 1:
		return &found[0], nil
	}
	return nil, fmt.Errorf("classic: server %s.%s: %w (%d servers)", hostname, domain, ErrAmbiguous, len(found))
}
