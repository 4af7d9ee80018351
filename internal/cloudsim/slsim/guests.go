package slsim

import (
	"context"
	"fmt"
	"reflect"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/softlayer/softlayer-go/datatypes"

	"github.com/e2eimage/e2eimage/internal/cloudsim/simcore"
)

// Power states of a virtual guest (SoftLayer_Virtual_Guest_Power_State).
const (
	PowerRunning = "RUNNING"
	PowerHalted  = "HALTED"
)

// Transaction status names of guest provisioning, in order. Each takes a
// quarter of Config.ProvisionDuration.
const (
	TxProvisionSetup  = "PROVISION_SETUP"
	TxProvisionDisk   = "CLOUD_COPY_IMAGE_TO_DISK"
	TxProvisionConfig = "CLOUD_CONFIGURE_METADATA"
	TxProvisionPower  = "POWER_ON"
)

var provisionPhases = []string{TxProvisionSetup, TxProvisionDisk, TxProvisionConfig, TxProvisionPower}

// Limits of an order, the simulator's (classic public VSIs: up to 56 cores
// and 242 GB; memory in whole GB).
const (
	maxGuestCPUs   = 56
	maxGuestMemory = 242 * 1024 // MB
)

type guest struct {
	id          int
	guid        string
	acct        *account
	who         actor
	hostname    string
	domain      string
	cpus        int
	memory      int // MB
	hourly      bool
	localDisk   bool
	privateOnly bool
	dedicated   bool
	dc          string
	templateID  int
	osCode      string
	created     time.Time
	modified    time.Time
	provisioned time.Time
	power       string
	tx          *transaction
	publicIP    string
	backendIP   string
	uuid        string
	cancel      context.CancelFunc
}

// guestSpec is a validated guest order.
type guestSpec struct {
	hostname, domain string
	cpus, memory     int
	dc               string
	hourly           bool
	localDisk        bool
	privateOnly      bool
	dedicated        bool
	templateGUID     string
	templateID       int
	osCode           string
	portSpeed        int
}

func guestService() *service {
	return &service{
		methods: map[string]method{
			"createobject": {fn: (*Server).createGuest,
				defaultMask: "mask[id,globalIdentifier,hostname,domain,fullyQualifiedDomainName,createDate,modifyDate,accountId,startCpus,maxCpu,maxCpuUnits,maxMemory,statusId,uuid,hourlyBillingFlag,localDiskFlag,datacenter]"},
			"generateordertemplate": {fn: (*Server).generateOrderTemplate},
			"deleteobject":          {fn: (*Server).deleteGuest},
			"poweron":               {fn: powerOp(EventPowerOn, ActionPowerOn, PowerRunning)},
			"poweroff":              {fn: powerOp(EventPowerOff, ActionPowerOff, PowerHalted)},
			"poweroffsoft":          {fn: powerOp(EventPowerOff, ActionPowerOff, PowerHalted)},
			"rebootdefault":         {fn: powerOp(EventReboot, ActionReboot, PowerRunning)},
			"rebootsoft":            {fn: powerOp(EventReboot, ActionReboot, PowerRunning)},
			"reboothard":            {fn: powerOp(EventReboot, ActionReboot, PowerRunning)},
			"editobject":            {fn: notImplemented},
			"createobjects":         {fn: notImplemented},
			"reloadoperatingsystem": {fn: notImplemented},
		},
		load:       (*Server).loadGuest,
		objectType: reflect.TypeOf(datatypes.Virtual_Guest{}),
		needsID:    true,
	}
}

// lookupGuest returns the caller's guest by id. Caller holds s.mu.
func (s *Server) lookupGuest(c *call) (*guest, error) {
	return lookupOwned(c, s.guests, func(g *guest) *account { return g.acct })
}

func (s *Server) loadGuest(c *call) (any, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	g, err := s.lookupGuest(c)
	if err != nil {
		return nil, err
	}
	return s.guestView(g), nil
}

var powerStates = map[string]datatypes.Virtual_Guest_Power_State{
	PowerRunning: {KeyName: ptr(PowerRunning), Name: ptr("Running"), Description: ptr("The virtual guest is running.")},
	PowerHalted:  {KeyName: ptr(PowerHalted), Name: ptr("Halted"), Description: ptr("The virtual guest is halted.")},
}

// guestView builds the full guest object. Caller holds s.mu.
func (s *Server) guestView(g *guest) datatypes.Virtual_Guest {
	ps := powerStates[g.power]
	lastPower := map[string]int{PowerRunning: 1, PowerHalted: 2}[g.power]
	v := datatypes.Virtual_Guest{
		Id:                           ptr(g.id),
		AccountId:                    ptr(g.acct.id),
		GlobalIdentifier:             ptr(g.guid),
		Hostname:                     ptr(g.hostname),
		Domain:                       ptr(g.domain),
		FullyQualifiedDomainName:     ptr(g.hostname + "." + g.domain),
		CreateDate:                   slTime(g.created),
		ModifyDate:                   slTime(g.modified),
		ProvisionDate:                slTime(g.provisioned),
		StartCpus:                    ptr(g.cpus),
		MaxCpu:                       ptr(g.cpus),
		MaxCpuUnits:                  ptr("CORE"),
		MaxMemory:                    ptr(g.memory),
		HourlyBillingFlag:            ptr(g.hourly),
		LocalDiskFlag:                ptr(g.localDisk),
		PrivateNetworkOnlyFlag:       ptr(g.privateOnly),
		DedicatedAccountHostOnlyFlag: ptr(g.dedicated),
		StatusId:                     ptr(1001),
		Status:                       &datatypes.Virtual_Guest_Status{KeyName: ptr("ACTIVE"), Name: ptr("Active")},
		PowerState:                   &ps,
		LastKnownPowerState:          &ps,
		LastPowerStateId:             ptr(lastPower),
		TypeId:                       ptr(1),
		Uuid:                         ptr(g.uuid),
		Datacenter:                   s.location(g.dc),
		PrimaryBackendIpAddress:      ptr(g.backendIP),
		ActiveTransactions:           []datatypes.Provisioning_Version1_Transaction{},
	}
	if !g.privateOnly {
		v.PrimaryIpAddress = ptr(g.publicIP)
	}
	if g.tx != nil {
		v.ActiveTransaction = s.txView(g.tx)
		v.LastTransaction = v.ActiveTransaction
		v.ActiveTransactions = append(v.ActiveTransactions, *v.ActiveTransaction)
	}
	if t, ok := s.templates[g.templateID]; ok {
		tv := s.templateView(t, false)
		v.BlockDeviceTemplateGroup = &tv
		v.OperatingSystemReferenceCode = ptr(t.osCode)
	} else if g.osCode != "" {
		v.OperatingSystemReferenceCode = ptr(g.osCode)
	}
	return v
}

var (
	hostnameRE = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$`)
	domainRE   = regexp.MustCompile(`^([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,63}$`)
)

func validHostDomain(host, domain string) error {
	if host == "" {
		return errPublic("Property 'hostname' is required to create a virtual guest.")
	}
	if !hostnameRE.MatchString(host) {
		return errInvalid("The hostname %q is not a valid DNS label (letters, digits and hyphens, at most 63 characters).", host)
	}
	if domain == "" {
		return errPublic("Property 'domain' is required to create a virtual guest.")
	}
	if !domainRE.MatchString(domain) || len(host)+1+len(domain) > 253 {
		return errInvalid("The domain %q is not a valid domain name.", domain)
	}
	return nil
}

// validateGuest checks a createObject / generateOrderTemplate template
// against the required fields of ../../../docs/CLOUD.md section 5.3.
func (s *Server) validateGuest(c *call, v *datatypes.Virtual_Guest) (*guestSpec, error) {
	sp := &guestSpec{hostname: deref(v.Hostname), domain: deref(v.Domain)}
	if err := validHostDomain(sp.hostname, sp.domain); err != nil {
		return nil, err
	}
	sp.cpus, sp.memory = deref(v.StartCpus), deref(v.MaxMemory)
	if v.StartCpus == nil {
		return nil, errPublic("Property 'startCpus' is required to create a virtual guest.")
	}
	if sp.cpus < 1 || sp.cpus > maxGuestCPUs {
		return nil, errInvalid("startCpus must be between 1 and %d.", maxGuestCPUs)
	}
	if v.MaxMemory == nil {
		return nil, errPublic("Property 'maxMemory' is required to create a virtual guest.")
	}
	if sp.memory < 1024 || sp.memory > maxGuestMemory || sp.memory%1024 != 0 {
		return nil, errInvalid("maxMemory must be a whole number of GB in MB between 1024 and %d.", maxGuestMemory)
	}
	if v.Datacenter == nil || deref(v.Datacenter.Name) == "" {
		return nil, errPublic("Property 'datacenter.name' is required to create a virtual guest.")
	}
	sp.dc = *v.Datacenter.Name
	if _, ok := s.locs[sp.dc]; !ok {
		return nil, errPublic("Location '%s' is not a valid location for this order (available: %s).", sp.dc, strings.Join(s.cfg.Datacenters, ", "))
	}
	if v.HourlyBillingFlag == nil {
		return nil, errPublic("Property 'hourlyBillingFlag' is required to create a virtual guest.")
	}
	if v.LocalDiskFlag == nil {
		return nil, errPublic("Property 'localDiskFlag' is required to create a virtual guest.")
	}
	sp.hourly, sp.localDisk = *v.HourlyBillingFlag, *v.LocalDiskFlag
	sp.privateOnly, sp.dedicated = deref(v.PrivateNetworkOnlyFlag), deref(v.DedicatedAccountHostOnlyFlag)
	sp.portSpeed = 100
	if len(v.NetworkComponents) > 0 && v.NetworkComponents[0].MaxSpeed != nil {
		sp.portSpeed = *v.NetworkComponents[0].MaxSpeed
	}
	if v.BlockDeviceTemplateGroup != nil {
		sp.templateGUID = deref(v.BlockDeviceTemplateGroup.GlobalIdentifier)
	}
	sp.osCode = deref(v.OperatingSystemReferenceCode)
	switch {
	case sp.templateGUID != "" && sp.osCode != "":
		return nil, errPublic("blockDeviceTemplateGroup.globalIdentifier conflicts with operatingSystemReferenceCode; give one.")
	case sp.templateGUID == "" && sp.osCode == "":
		return nil, errPublic("Either blockDeviceTemplateGroup.globalIdentifier or operatingSystemReferenceCode is required.")
	case sp.templateGUID != "":
		s.mu.Lock()
		id, err := s.activeTemplate(c.acct, sp.templateGUID, 0, sp.dc)
		s.mu.Unlock()
		if err != nil {
			return nil, err
		}
		sp.templateID = id
	default:
		if _, ok := findOS(sp.osCode); !ok {
			return nil, errInvalid("Operating system reference code %q is not available.", sp.osCode)
		}
	}
	return sp, nil
}

// createGuest serves createObject.
func (s *Server) createGuest(c *call) (any, error) {
	var v datatypes.Virtual_Guest
	ok, err := c.param(0, &v)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, errPublic("createObject needs a SoftLayer_Virtual_Guest template parameter.")
	}
	sp, err := s.validateGuest(c, &v)
	if err != nil {
		return nil, err
	}
	g, evs, err := s.startGuest(c, sp)
	if err != nil {
		return nil, err
	}
	s.emit(evs...)
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.guestView(g), nil
}

// startGuest creates a guest and starts its provisioning transaction.
func (s *Server) startGuest(c *call, sp *guestSpec) (*guest, []simcore.Event, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if sp.templateID != 0 {
		// Re-check under the lock: the template may have changed since
		// validation.
		if _, err := s.activeTemplate(c.acct, "", sp.templateID, sp.dc); err != nil {
			return nil, nil, err
		}
	}
	now := s.clock.Now()
	s.ids.guest++
	n := s.ids.guest % 60000
	g := &guest{
		id: s.ids.guest, guid: newGUID(), acct: c.acct, who: c.actor(), hostname: sp.hostname, domain: sp.domain,
		cpus: sp.cpus, memory: sp.memory, hourly: sp.hourly, localDisk: sp.localDisk, privateOnly: sp.privateOnly,
		dedicated: sp.dedicated, dc: sp.dc, templateID: sp.templateID, osCode: sp.osCode, created: now, modified: now,
		power: PowerHalted, uuid: newGUID(),
		publicIP:  fmt.Sprintf("198.18.%d.%d", n/250, n%250+2),
		backendIP: fmt.Sprintf("10.%d.%d.%d", 100+n/62500, n/250%250, n%250+2),
	}
	g.tx = &transaction{id: s.nextTx(), name: TxProvisionSetup, created: now, change: now, guestID: g.id}
	ctx, cancel := context.WithCancel(s.ctx)
	g.cancel = cancel
	if !s.goBackground(ctx, func(ctx context.Context) { s.runProvision(ctx, g.id) }) {
		cancel()
		return nil, nil, errPublic("The service is shutting down.")
	}
	s.guests[g.id] = g
	fqdn := g.hostname + "." + g.domain
	meta := map[string]any{"hostname": g.hostname, "domain": g.domain, "datacenter": g.dc, "startCpus": g.cpus, "maxMemory": g.memory}
	if t, ok := s.templates[g.templateID]; ok {
		meta["blockDeviceTemplateGroup"] = t.guid
		meta["isEncrypted"] = t.encrypted
	}
	s.logEvent(c.acct, g.who, false, ObjectCCI, g.id, EventGuestCreate, fqdn, meta)
	ev := s.auditEvent(c.acct, g.who, ActionProvision, simcore.OutcomePending, "vsi", g.id, fqdn, 202, "", meta,
		map[string]any{"id": g.id, "globalIdentifier": g.guid})
	return g, []simcore.Event{ev}, nil
}

// runProvision walks a guest through the provisioning phases.
func (s *Server) runProvision(ctx context.Context, id int) {
	step := s.cfg.ProvisionDuration / time.Duration(len(provisionPhases))
	for i, phase := range provisionPhases {
		if i > 0 {
			s.mu.Lock()
			g, ok := s.guests[id]
			if ok {
				g.tx.name, g.tx.change = phase, s.clock.Now()
			}
			s.mu.Unlock()
			s.signal()
			if !ok {
				return
			}
		}
		if err := s.clock.Sleep(ctx, step); err != nil {
			return
		}
	}
	s.mu.Lock()
	g, ok := s.guests[id]
	if !ok {
		s.mu.Unlock()
		return
	}
	now := s.clock.Now()
	g.provisioned, g.modified, g.power, g.tx, g.cancel = now, now, PowerRunning, nil, nil
	fqdn := g.hostname + "." + g.domain
	s.logEvent(g.acct, g.who, true, ObjectCCI, g.id, EventGuestProvision, fqdn, map[string]any{"provisionDate": now.Format(time.RFC3339)})
	s.logEvent(g.acct, g.who, true, ObjectCCI, g.id, EventPowerOn, fqdn, nil)
	evs := []simcore.Event{
		s.auditEvent(g.acct, g.who, ActionProvision, simcore.OutcomeSuccess, "vsi", g.id, fqdn, 200, "", nil,
			map[string]any{"provisionDate": now.Format(time.RFC3339)}),
		s.auditEvent(g.acct, g.who, ActionBoot, simcore.OutcomeSuccess, "vsi", g.id, fqdn, 200, "", nil, nil),
	}
	s.mu.Unlock()
	s.emit(evs...)
}

func (s *Server) deleteGuest(c *call) (any, error) {
	s.mu.Lock()
	g, err := s.lookupGuest(c)
	if err != nil {
		s.mu.Unlock()
		return nil, err
	}
	if g.cancel != nil {
		g.cancel()
	}
	delete(s.guests, g.id)
	fqdn := g.hostname + "." + g.domain
	who := c.actor()
	s.logEvent(c.acct, who, false, ObjectCCI, g.id, EventGuestDelete, fqdn, nil)
	ev := s.auditEvent(c.acct, who, ActionReclaim, simcore.OutcomeSuccess, "vsi", g.id, fqdn, 200, "", nil, nil)
	s.mu.Unlock()
	s.emit(ev)
	return true, nil
}

// powerOp serves the power methods of a provisioned guest.
func powerOp(eventName, action, state string) handlerFunc {
	return func(s *Server, c *call) (any, error) {
		s.mu.Lock()
		g, err := s.lookupGuest(c)
		if err != nil {
			s.mu.Unlock()
			return nil, err
		}
		if g.provisioned.IsZero() {
			s.mu.Unlock()
			return nil, errPublic("The virtual guest %d has an active transaction (%s); try again when provisioning has finished.", g.id, g.tx.name)
		}
		g.power, g.modified = state, s.clock.Now()
		fqdn := g.hostname + "." + g.domain
		who := c.actor()
		s.logEvent(c.acct, who, false, ObjectCCI, g.id, eventName, fqdn, nil)
		ev := s.auditEvent(c.acct, who, action, simcore.OutcomeSuccess, "vsi", g.id, fqdn, 200, "", nil, nil)
		s.mu.Unlock()
		s.emit(ev)
		return true, nil
	}
}

// accountGuests returns the caller's guests by id.
func (s *Server) accountGuests(acct *account) []datatypes.Virtual_Guest {
	s.mu.Lock()
	defer s.mu.Unlock()
	var ids []int
	for id, g := range s.guests {
		if g.acct == acct {
			ids = append(ids, id)
		}
	}
	sort.Ints(ids)
	out := make([]datatypes.Virtual_Guest, 0, len(ids))
	for _, id := range ids {
		out = append(out, s.guestView(s.guests[id]))
	}
	return out
}

func accountService() *service {
	return &service{
		methods: map[string]method{
			"getprivateblockdevicetemplategroups": {fn: func(s *Server, c *call) (any, error) {
				return s.accountTemplates(c.acct), nil
			}, filterRoot: "privateBlockDeviceTemplateGroups"},
			"getblockdevicetemplategroups": {fn: func(s *Server, c *call) (any, error) {
				return s.accountTemplates(c.acct), nil
			}, filterRoot: "blockDeviceTemplateGroups"},
			"getvirtualguests": {fn: func(s *Server, c *call) (any, error) {
				return s.accountGuests(c.acct), nil
			}, filterRoot: "virtualGuests"},
			"gethourlyvirtualguests": {fn: func(s *Server, c *call) (any, error) {
				var out []datatypes.Virtual_Guest
				for _, g := range s.accountGuests(c.acct) {
					if deref(g.HourlyBillingFlag) {
						out = append(out, g)
					}
				}
				return append([]datatypes.Virtual_Guest{}, out...), nil
			}, filterRoot: "hourlyVirtualGuests"},
		},
		load: func(s *Server, c *call) (any, error) {
			return datatypes.Account{
				Id:          ptr(c.acct.id),
				CompanyName: ptr("IBM Cloud account " + c.acct.ibm),
				Email:       ptr(c.principal.Name),
				BrandId:     ptr(2),
				IsReseller:  ptr(0),
				AccountStatus: &datatypes.Account_Status{
					Id: ptr(1001), Name: ptr("Active"),
				},
				PrivateBlockDeviceTemplateGroups: s.accountTemplates(c.acct),
				BlockDeviceTemplateGroups:        s.accountTemplates(c.acct),
				VirtualGuests:                    s.accountGuests(c.acct),
			}, nil
		},
		objectType: reflect.TypeOf(datatypes.Account{}),
	}
}
