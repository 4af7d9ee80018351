package audit

import (
	"encoding/json"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/e2eimage/e2eimage/crn"
)

// SourceName says where an event was read.
type SourceName string

// The sources.
const (
	// ClassicEventLog is the classic infrastructure event log
	// (SoftLayer_Event_Log).
	ClassicEventLog SourceName = "classic-event-log"
	// ActivityTracker is IBM Cloud Activity Tracker, read through the IBM
	// Cloud Logs query API.
	ActivityTracker SourceName = "activity-tracker"
)

// Outcomes of Activity Tracker events (the CADF outcome field:
// https://cloud.ibm.com/docs/activity-tracker?topic=activity-tracker-event).
const (
	OutcomeSuccess = "success"
	OutcomePending = "pending"
	OutcomeFailure = "failure"
)

// Activity Tracker actions this package names. Each is documented by IBM
// (see Documented for where); ActionTemplateCreate only for a template
// captured from an instance, not for an import.
const (
	// ActionWrap is Key Protect's (and HPCS's) wrap of a DEK with a root
	// key.
	ActionWrap = "kms.secrets.wrap"
	// ActionUnwrap is the unwrap of a wrapped DEK.
	ActionUnwrap = "kms.secrets.unwrap"
	// ActionTemplateCreate is documented for "an initiator creates an
	// image template for an instance" (a capture). IBM documents no
	// Activity Tracker event for an image import (createFromIcos) or
	// export, so a run that imports its template does not expect it.
	ActionTemplateCreate = "audit-log.vsi-image-template.create"
	// ActionProvision is the provisioning of a classic virtual server.
	ActionProvision = "audit-log.vsi.provision"
)

// documented says where IBM documents each action this package names.
var documented = map[string]string{
	ActionWrap:   "Key Protect, Activity Tracker events (https://cloud.ibm.com/docs/key-protect?topic=key-protect-at-events): kms.secrets.wrap, wrap a key",
	ActionUnwrap: "Key Protect, Activity Tracker events (https://cloud.ibm.com/docs/key-protect?topic=key-protect-at-events): kms.secrets.unwrap, unwrap a key",
	ActionTemplateCreate: "Virtual servers, Activity Tracker events (ibm-cloud-docs/virtual-servers vsi_activity_tracker_events.md): " +
		"audit-log.vsi-image-template.create, an initiator creates an image template for an instance; no event is documented for an import",
	ActionProvision: "Virtual servers, Activity Tracker events (ibm-cloud-docs/virtual-servers vsi_activity_tracker_events.md): " +
		"audit-log.vsi.provision, an initiator provisions an instance",
}

// Documented returns where IBM documents an Activity Tracker action this
// package names, and false for any other action.
func Documented(action string) (source string, ok bool) {
	source, ok = documented[action]
	return source, ok
}

// ExpectedActions returns the Activity Tracker actions that a run with
// q's resources leaves, as far as IBM documents them: the wrap of its DEK
// with a root key (when q names key CRNs) and the provisioning of its
// server (when q names guests). An image import is not among them: IBM
// documents no event for createFromIcos (ActionTemplateCreate is for a
// template captured from an instance), so a run that imported a template
// expects none for it; its events, if any, are still collected.
func ExpectedActions(q Query) []string {
	var want []string
	if len(q.KeyCRNs) > 0 {
		want = append(want, ActionWrap)
	}
	if len(q.GuestIDs) > 0 {
		want = append(want, ActionProvision)
	}
	return want
}

// Missing returns the actions of want that no event of events has with an
// outcome other than failure (the classic event log records no outcome),
// in want's order.
func Missing(events []Event, want []string) []string {
	var missing []string
	for _, a := range want {
		if !slices.ContainsFunc(events, func(e Event) bool { return e.Action == a && e.Outcome != OutcomeFailure }) {
			missing = append(missing, a)
		}
	}
	return missing
}

// Event log object names. "CCI" is the object name of virtual servers in
// softlayer-python's SoftLayer_Event_Log fixture, its "event-log get -t
// CCI" examples and SLDN's event log examples. "Image" is one of the
// object names softlayer-python's fixture of getAllEventObjectNames lists;
// that image template events (imports included) are recorded under it, and
// under which event names, IBM does not document: it is this package's
// default, changed with WithObjectNames.
const (
	ObjectNameGuest    = "CCI"
	ObjectNameTemplate = "Image"
)

// Event is one audit event from either source, in one model.
type Event struct {
	// Time is when the event happened (eventTime, eventCreateDate).
	Time time.Time
	// Source is where it was read.
	Source SourceName
	// Action is the Activity Tracker action (service.objectType.action,
	// e.g. kms.secrets.wrap) or the event log's eventName.
	Action string
	// Outcome is success, pending or failure for Activity Tracker
	// events; the classic event log records none ("").
	Outcome string
	// TargetID is the target's CRN (Activity Tracker) or the object id
	// (event log).
	TargetID string
	// TargetType is the target's typeURI (Activity Tracker) or the
	// event log's objectName ("CCI", "Image", ...).
	TargetType string
	// TargetName is the target's name, or the event log's label.
	TargetName string
	// Initiator is who acted: initiator.name (else id), or the event
	// log's username (else openIdConnectUserName, else userType: SYSTEM
	// records name no user).
	Initiator string
	// Message is the event's message (Activity Tracker); for the event
	// log, its label.
	Message string
	// CorrelationID is correlationId (Activity Tracker) or traceId (event
	// log).
	CorrelationID string
	// FailureReason is reason.reasonForFailure (Activity Tracker).
	FailureReason string
	// Raw is the event as the source sent it: the CADF JSON for Activity
	// Tracker, the SoftLayer_Event_Log record's JSON for the event log.
	Raw json.RawMessage

	// kind is what EventLog knew the record to be about, from its
	// configured object names; kindOther when not set.
	kind resourceKind
}

// Query selects the events of one run: a time window and the resources the
// run touched. An event is selected when it lies in [Start, End) and
// concerns one of the resources (when none is given, every event of the
// window is selected).
type Query struct {
	// Start and End bound the window: Start <= Time < End. Start is
	// required; a zero End means the services' current time
	// (Reader.ServiceNow), read from their clocks, not the local one.
	Start, End time.Time
	// KeyCRNs are CRNs of root keys whose Key Protect or HPCS events
	// (wrap, unwrap, ...) are wanted.
	KeyCRNs []string
	// TemplateIDs and TemplateGUIDs name image templates (id and
	// globalIdentifier).
	TemplateIDs   []int
	TemplateGUIDs []string
	// GuestIDs name virtual servers.
	GuestIDs []int
	// Actions, when set, keeps only events whose Action is one of these
	// (Activity Tracker actions and event log event names alike).
	Actions []string
}

func (q *Query) anyResource() bool {
	return len(q.KeyCRNs)+len(q.TemplateIDs)+len(q.TemplateGUIDs)+len(q.GuestIDs) > 0
}

// Matches reports whether e is selected by q: in the window, with an
// accepted action, and concerning one of q's resources. Sources may return
// more than their queries asked; Reader applies Matches to everything.
func (q *Query) Matches(e *Event) bool {
	if e.Time.Before(q.Start) || !e.Time.Before(q.End) {
		return false
	}
	if len(q.Actions) > 0 && !slices.Contains(q.Actions, e.Action) {
		return false
	}
	if !q.anyResource() {
		return true
	}
	switch e.Source {
	case ClassicEventLog:
		id, err := strconv.Atoi(e.TargetID)
		if err != nil {
			return false
		}
		kind := e.kind
		if kind == kindOther {
			switch {
			case strings.EqualFold(e.TargetType, ObjectNameGuest):
				kind = kindGuest
			case strings.EqualFold(e.TargetType, ObjectNameTemplate):
				kind = kindTemplate
			}
		}
		switch kind {
		case kindGuest:
			return slices.Contains(q.GuestIDs, id)
		case kindTemplate:
			return slices.Contains(q.TemplateIDs, id)
		}
		return false
	default:
		if slices.Contains(q.KeyCRNs, e.TargetID) {
			return true
		}
		res, ok := crnResource(e.TargetID)
		if !ok {
			return false
		}
		switch classicKind(e.Action) {
		case kindTemplate:
			if slices.Contains(q.TemplateGUIDs, res) {
				return true
			}
			id, err := strconv.Atoi(res)
			return err == nil && slices.Contains(q.TemplateIDs, id)
		case kindGuest:
			id, err := strconv.Atoi(res)
			return err == nil && slices.Contains(q.GuestIDs, id)
		}
		return false
	}
}

// crnResource returns the resource segment (the last of the ten) of a CRN,
// which names the resource within its type (crn.Parse).
func crnResource(s string) (resource string, ok bool) {
	c, err := crn.Parse(s)
	if err != nil {
		return "", false
	}
	return c.Resource, c.Resource != ""
}

type resourceKind int

const (
	kindOther resourceKind = iota
	kindTemplate
	kindGuest
)

// classicKind tells from a classic infrastructure action what its target
// is. IBM documents the actions (audit-log.vsi.* for instances,
// audit-log.vsi-image-template.create for templates: virtual-servers
// vsi_activity_tracker_events.md) but not the CRNs of their targets, so
// the kind comes from the documented action, and the target CRN only gives
// the resource id.
func classicKind(action string) resourceKind {
	switch {
	case strings.HasPrefix(action, "audit-log.vsi-image-template."):
		return kindTemplate
	case strings.HasPrefix(action, "audit-log.vsi.") || strings.HasPrefix(action, "audit-log.vsi-"):
		return kindGuest
	}
	return kindOther
}

// compareEvents orders events by time, then source, action and target so
// that the order is total and stable across runs.
func compareEvents(a, b Event) int {
	if c := a.Time.Compare(b.Time); c != 0 {
		return c
	}
	if c := strings.Compare(string(a.Source), string(b.Source)); c != 0 {
		return c
	}
	if c := strings.Compare(a.Action, b.Action); c != 0 {
		return c
	}
	return strings.Compare(a.TargetID, b.TargetID)
}
