package atsim

import "sort"

// Provenance says where an action name the simulator records comes from.
type Provenance struct {
	// Documented is where IBM documents the action name; "" when it is
	// invented.
	Documented string
	// Invented says what the simulator makes up about it: the whole name,
	// or (for a documented name) the situation it is recorded in. "" when
	// the simulator records it as documented.
	Invented string
}

// Sources of documented action names.
const (
	docKeyProtect = "Key Protect, Activity Tracker events: https://cloud.ibm.com/docs/key-protect?topic=key-protect-at-events (ibm-cloud-docs/key-protect at-events.md)"
	docVSI        = "Classic virtual servers, Activity Tracker events (ibm-cloud-docs/virtual-servers vsi_activity_tracker_events.md)"
	docIAM        = "IAM, Activity Tracker events (ibm-cloud-docs/activity-tracker at_events_iam.md)"
	docCOS        = "Cloud Object Storage, Activity Tracker events, global events: https://cloud.ibm.com/docs/cloud-object-storage?topic=cloud-object-storage-at-events"
)

// Actions is every Activity Tracker action a simulated service records,
// with its provenance. Store counts the events whose action is not listed
// (Uncatalogued), so that a new name cannot slip in unlabelled.
var Actions = map[string]Provenance{
	// kmssim (Key Protect and HPCS): every name is in Key Protect's list.
	"kms.secrets.create":        {Documented: docKeyProtect},
	"kms.secrets.list":          {Documented: docKeyProtect},
	"kms.secrets.head":          {Documented: docKeyProtect},
	"kms.secrets.read":          {Documented: docKeyProtect},
	"kms.secrets-metadata.read": {Documented: docKeyProtect},
	"kms.secrets.default":       {Documented: docKeyProtect},
	"kms.secrets.wrap":          {Documented: docKeyProtect},
	"kms.secrets.unwrap":        {Documented: docKeyProtect},
	"kms.secrets.rewrap":        {Documented: docKeyProtect},
	"kms.secrets.rotate":        {Documented: docKeyProtect},
	"kms.secrets.disable":       {Documented: docKeyProtect},
	"kms.secrets.enable":        {Documented: docKeyProtect},
	"kms.secrets.restore":       {Documented: docKeyProtect},
	"kms.secrets.delete":        {Documented: docKeyProtect},
	"kms.secrets.purge":         {Documented: docKeyProtect},

	// slsim (classic infrastructure).
	"audit-log.vsi-image-template.create": {Documented: docVSI,
		Invented: "documented for an image template created from an instance; the simulator also records it for an image import (createFromIcos), for which IBM documents no event"},
	"audit-log.vsi-image-template.export": {Invented: "the whole name: IBM documents no event for an image export (copyToIcos)"},
	"audit-log.vsi-image-template.delete": {Invented: "the whole name: IBM documents no event for deleting an image template"},
	"audit-log.vsi.provision":             {Documented: docVSI},
	"audit-log.vsi.boot":                  {Documented: docVSI},
	"audit-log.vsi.power-on":              {Documented: docVSI},
	"audit-log.vsi.power-off":             {Documented: docVSI},
	"audit-log.vsi.reboot":                {Documented: docVSI},
	"audit-log.vsi.reclaim":               {Documented: docVSI},

	// iamsim.
	"iam-identity.serviceid.create": {Invented: "the whole name: IBM documents iam-identity.account-serviceid.create (" + docIAM + ")"},
	"iam-identity.serviceid.delete": {Invented: "the whole name: IBM documents iam-identity.account-serviceid.delete (" + docIAM + ")"},
	"iam-identity.apikey.create":    {Invented: "the whole name: IBM documents iam-identity.serviceid-apikey.create and iam-identity.user-apikey.create (" + docIAM + ")"},
	"iam-identity.apikey.delete":    {Invented: "the whole name: IBM documents iam-identity.serviceid-apikey.delete and iam-identity.user-apikey.delete (" + docIAM + ")"},
	"iam-am.policy.create":          {Documented: docIAM},
	"iam-am.policy.delete":          {Documented: docIAM},

	// s3sim.
	"cloud-object-storage.bucket.create": {Documented: docCOS},
	"cloud-object-storage.bucket.delete": {Documented: docCOS},
}

// ActionNames returns the catalogued action names, sorted.
func ActionNames() []string {
	out := make([]string, 0, len(Actions))
	for a := range Actions {
		out = append(out, a)
	}
	sort.Strings(out)
	return out
}
