package audit

import (
	"encoding/json"
	"slices"
	"strconv"
	"strings"
	"time"
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

// Outcomes of Activity Tracker events (CLOUD.md section 6.3).
const (
	OutcomeSuccess = "success"
	OutcomePending = "pending"
	OutcomeFailure = "failure"
)

// Actions this package looks for (CLOUD.md sections 6.1 and 6.2).
const (
	ActionWrap           = "kms.secrets.wrap"
	ActionUnwrap         = "kms.secrets.unwrap"
	ActionTemplateCreate = "audit-log.vsi-image-template.create"
	ActionProvision      = "audit-log.vsi.provision"
)

// Event log object names. "CCI" for virtual servers is documented; IBM does
// not document the object name of image template events (CLOUD.md section
// 8): "Image" is this package's default and can be changed with
// WithObjectNames.
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
	// Start and End bound the window: Start <= Time < End. Required.
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
		kind, res, ok := crnResource(e.TargetID)
		if !ok {
			return false
		}
		switch classicKind(kind) {
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

// crnResource returns the resource type and resource (the last two of the
// ten segments) of a CRN.
func crnResource(crn string) (kind, resource string, ok bool) {
	p := strings.Split(crn, ":")
	if len(p) != 10 || p[0] != "crn" {
		return "", "", false
	}
	return p[8], p[9], p[9] != ""
}

type resourceKind int

const (
	kindOther resourceKind = iota
	kindTemplate
	kindGuest
)

// classicKind reads the resource type of a classic resource's CRN in an
// Activity Tracker event. IBM does not document these CRNs (CLOUD.md
// section 6.1 names only the service, audit-log); this accepts the
// plausible spellings.
func classicKind(kind string) resourceKind {
	k := strings.ToLower(kind)
	switch {
	case strings.Contains(k, "image") || strings.Contains(k, "template"):
		return kindTemplate
	case k == "vsi" || k == "instance" || k == "guest" || k == "virtual-guest" || strings.Contains(k, "virtual-server"):
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
