package slsim

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"

	"github.com/softlayer/softlayer-go/datatypes"

	"github.com/e2eimage/e2eimage/internal/cloudsim/simcore"
)

// Event_Log object and event names. IBM does not document the names the
// classic event log uses for image imports (CLOUD.md section 8); these are
// the simulator's choice. "CCI" for virtual servers is documented.
const (
	ObjectImage = "Image" // objectName of image template events
	ObjectCCI   = "CCI"   // objectName of virtual server events

	EventImportStarted  = "Import Started"  // createFromIcos accepted
	EventImportComplete = "Import Complete" // the template became Active
	EventImportFailed   = "Import Failed"   // the template went to Error; metaData.reason says why
	EventExportStarted  = "Export Started"  // copyToIcos accepted
	EventExportComplete = "Export Complete"
	EventExportFailed   = "Export Failed" // metaData.reason says why
	EventImageDelete    = "Delete"        // template deleteObject

	EventGuestCreate    = "Create"             // createObject / placeOrder accepted
	EventGuestProvision = "Provision Complete" // provisionDate set
	EventPowerOn        = "Power On"
	EventPowerOff       = "Power Off"
	EventReboot         = "Reboot"
	EventGuestDelete    = "Cancel" // deleteObject
)

// Activity Tracker actions (CLOUD.md section 6.1). No action is documented
// for import or export; the simulator reports imports as
// audit-log.vsi-image-template.create, the only image action IBM lists.
const (
	ActionTemplateCreate = "audit-log.vsi-image-template.create"
	ActionTemplateExport = "audit-log.vsi-image-template.export" // not an IBM-documented action
	ActionTemplateDelete = "audit-log.vsi-image-template.delete" // not an IBM-documented action
	ActionProvision      = "audit-log.vsi.provision"
	ActionBoot           = "audit-log.vsi.boot"
	ActionPowerOn        = "audit-log.vsi.power-on"
	ActionPowerOff       = "audit-log.vsi.power-off"
	ActionReboot         = "audit-log.vsi.reboot"
	ActionReclaim        = "audit-log.vsi.reclaim"
)

// eventRecord is one SoftLayer_Event_Log entry and its account.
type eventRecord struct {
	acct *account
	log  datatypes.Event_Log
}

// actor is who started an operation, kept for the events its background
// transaction records later.
type actor struct {
	principal simcore.Principal
	credType  string
	ip        string
	userID    int
}

func (c *call) actor() actor {
	return actor{principal: c.principal, credType: c.credType, ip: c.remoteIP, userID: c.userID}
}

// logEvent appends an Event_Log record. system marks events the platform
// records on its own (userType SYSTEM), as opposed to the customer's API
// call (userType CUSTOMER). Caller holds s.mu.
func (s *Server) logEvent(acct *account, who actor, system bool, objectName string, objectID int,
	eventName, label string, meta map[string]any) {
	e := datatypes.Event_Log{
		AccountId:       ptr(acct.id),
		EventCreateDate: slTime(s.clock.Now()),
		EventName:       ptr(eventName),
		ObjectName:      ptr(objectName),
		ObjectId:        ptr(objectID),
		Label:           ptr(label),
		TraceId:         ptr(strings.ReplaceAll(newGUID(), "-", "")),
	}
	if meta != nil {
		b, _ := json.Marshal(meta)
		e.MetaData = ptr(string(b))
	} else {
		e.MetaData = ptr("")
	}
	if system {
		e.UserType = ptr("SYSTEM")
		e.Username = ptr("SYSTEM")
	} else {
		e.UserType = ptr("CUSTOMER")
		e.UserId = ptr(who.userID)
		e.Username = ptr(who.principal.Name)
		e.OpenIdConnectUserName = ptr(who.principal.IAMID)
		e.IpAddress = ptr(who.ip)
	}
	s.events = append(s.events, eventRecord{acct: acct, log: e})
}

// targetCRN names a classic resource in Activity Tracker events:
// crn:v1:bluemix:public:audit-log:<region>:a/<account>::<kind>:<id>
// (kind image-template or vsi). IBM does not document the CRN of classic
// resources in AT events; this form puts the documented service name
// audit-log (CLOUD.md section 6.1) in the service position.
func (s *Server) targetCRN(acct *account, kind string, id int) string {
	return fmt.Sprintf("crn:v1:bluemix:public:audit-log:%s:a/%s::%s:%d", s.cfg.Region, acct.ibm, kind, id)
}

// auditEvent builds an Activity Tracker event; emit it with s.emit after
// releasing s.mu.
func (s *Server) auditEvent(acct *account, who actor, action, outcome, kind string, id int, name string,
	code int, failure string, request, response map[string]any) simcore.Event {
	sev := simcore.SeverityNormal
	reasonType := "OK"
	switch {
	case outcome == simcore.OutcomeFailure:
		sev = simcore.SeverityWarning
		reasonType = "Failure"
	case outcome == simcore.OutcomePending:
		reasonType = "Accepted"
	}
	typeURI := "service/security/account/user"
	if strings.HasPrefix(who.principal.IAMID, "iam-ServiceId-") {
		typeURI = "service/security/account/serviceid"
	}
	verb := action[strings.LastIndexByte(action, '.')+1:]
	msg := fmt.Sprintf("Classic infrastructure: %s %s %s", verb, strings.ReplaceAll(kind, "-", " "), name)
	if outcome != simcore.OutcomeSuccess {
		msg += " -" + outcome
	}
	return simcore.Event{
		Action:    action,
		Outcome:   outcome,
		Severity:  sev,
		EventTime: s.clock.Now(),
		Initiator: simcore.Initiator{
			ID: who.principal.IAMID, Name: who.principal.Name, TypeURI: typeURI,
			Credential: simcore.Credential{Type: who.credType}, Host: simcore.Host{Address: who.ip},
		},
		Target: simcore.Target{
			ID: s.targetCRN(acct, kind, id), Name: name, TypeURI: "audit-log/" + kind,
		},
		Reason:       simcore.Reason{ReasonCode: code, ReasonType: reasonType, ReasonForFailure: failure},
		RequestData:  request,
		ResponseData: response,
		LogSourceCRN: fmt.Sprintf("crn:v1:bluemix:public:audit-log:%s:a/%s::", s.cfg.Region, acct.ibm),
		Message:      msg,
	}
}

// emit hands events to the sink. Call it without holding s.mu.
func (s *Server) emit(events ...simcore.Event) {
	if s.cfg.Events == nil {
		return
	}
	for _, e := range events {
		s.cfg.Events.Record(e)
	}
}

func eventLogService() *service {
	return &service{methods: map[string]method{
		"getallobjects":          {fn: (*Server).eventLogAll},
		"getalleventnames":       {fn: (*Server).eventLogNames},
		"getalleventobjectnames": {fn: (*Server).eventLogObjectNames},
		"getallusertypes": {fn: func(*Server, *call) (any, error) {
			return []string{"CUSTOMER", "EMPLOYEE", "SYSTEM"}, nil
		}},
	}}
}

func (s *Server) accountEvents(acct *account) []datatypes.Event_Log {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := []datatypes.Event_Log{}
	for _, e := range s.events {
		if e.acct == acct {
			out = append(out, e.log)
		}
	}
	return out
}

// eventLogAll serves SoftLayer_Event_Log::getAllObjects: the caller's
// account's records, oldest first unless an orderBy filter says otherwise.
func (s *Server) eventLogAll(c *call) (any, error) {
	return s.accountEvents(c.acct), nil
}

func (s *Server) eventLogNames(c *call) (any, error) {
	var objectName string
	if _, err := c.param(0, &objectName); err != nil {
		return nil, err
	}
	seen := map[string]bool{}
	for _, e := range s.accountEvents(c.acct) {
		if objectName == "" || *e.ObjectName == objectName {
			seen[*e.EventName] = true
		}
	}
	return sortedKeys(seen), nil
}

func (s *Server) eventLogObjectNames(c *call) (any, error) {
	seen := map[string]bool{ObjectImage: true, ObjectCCI: true}
	for _, e := range s.accountEvents(c.acct) {
		seen[*e.ObjectName] = true
	}
	return sortedKeys(seen), nil
}

func sortedKeys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
