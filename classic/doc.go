// Package classic drives the IBM Cloud classic infrastructure (SoftLayer)
// API for the End to End encryption flow: it imports an encrypted VHD from
// Cloud Object Storage as an image template, waits for the import, exports
// a template back to COS, copies a template to another data center, and
// orders a virtual server from a template and waits until it is
// provisioned. Every call goes through
// github.com/softlayer/softlayer-go's REST transport.
//
// # Failing early
//
// An import runs for minutes to an hour on the backplane before it reports
// a mistake in its request. Import therefore checks first, in order and
// before any request: the template name; the cos://<region>/<bucket>/<object>
// URI, its region (an import location) and object name (.vhd for an
// encrypted image); the API key; the operating system (one IBM documents
// for imports, SupportedOperatingSystems, unless AnyOSCode); the disk size
// (MaxImportDiskSize); the
// root key CRN (Key Protect or HPCS, in the bucket's region) and the wrapped
// DEK (base64); the bucket's resiliency (Regional, in the URI's region),
// from ImportRequest.BucketLocation or a BucketLocator. Only then does it
// ask the API, once per Client, which OS reference codes VHD imports
// accept. Violations are *InvalidImportError values naming the field.
// ValidateImport runs the same checks and imports nothing.
//
// # Waiting
//
// WaitTemplate, WaitServer and Export poll with a backoff that starts at
// the minimum interval, doubles while nothing changes, is capped at the
// maximum and is jittered (WithPollInterval, PollEvery). Progress callbacks
// (TemplateProgress, ServerProgress) see every poll. An import is read from
// the template and its children. Whether the parent says Active while a
// child still imports is not documented (the fixture IBM's CLI tests with
// shows an Active parent next to a finished import), so WaitTemplate does
// not take Active for done: it waits until no transaction runs anywhere
// and a child holds the disks. It ends with an *ImportFailedError on an
// error status or when a copy it saw vanishes (two polls without it), a
// *TemplateGoneError when the template disappears, a *NoProgressError when
// one transaction status lasts longer than the no-progress bound
// (WithNoProgressBound, NoProgressAfter; default DefaultNoProgressBound,
// one hour), and a *TemplateStateError when the state stays unexplained for
// longer than a bound (WithUnknownStateBound). Progress callbacks and every
// wait error name the current transaction (Template.Current: group, status,
// friendly name, how long the wait has seen it). Every wait ends when its
// context does; give it a deadline.
//
// # Data centers
//
// An import lands in one data center of its region (ImportDatacenter names
// the ones IBM documents), and a server can be ordered only where the
// template has a copy. ServerSpec.Datacenter empty orders in the
// template's data center; another one makes CreateServer copy the template
// there first (CopyTemplate: addLocations, then a wait). PlanPlacement and
// Client.Placement say which will happen.
//
// # Retries and idempotency
//
// softlayer-go can retry requests itself (Session.Retries), but it retries
// timeouts of every method, POSTs included, and sleeps without watching the
// context. A createObject or createFromIcos whose response timed out may
// have succeeded, and sending it again orders a second server or starts a
// second import. This package therefore leaves softlayer-go's retries off
// and retries only read-only calls itself (getObject, lists,
// generateOrderTemplate, verifyOrder, getAllObjects), on timeouts,
// SoftLayer_Exception_WebService_RateLimitExceeded, 429 and 502/503/504,
// and on the HTTP 500 answers that say the fault is passing ("Internal
// Error", a timeout, "try again", "temporarily unavailable"): SoftLayer
// answers all its exceptions at 500, so a 500 whose code or message says
// not found, not permitted or invalid is never retried. Reads and the
// polls of a wait use the library's one retry policy (backoff with jitter,
// bounded attempts, ended by the context; WithReadAttempts). The answers
// of createFromIcos, createObject and verifyOrder are decoded strictly: an
// error body answered at HTTP 200 becomes an *APIError keeping IBM's
// message, and an answer without the id is an error. Calls that create
// something are sent once; after an unknown outcome use FindTemplateByName
// or FindServer to see whether the object exists before trying again.
//
// # Secrets
//
// API keys are *secret.String values. The classic API key is sent as HTTP
// Basic credentials, the import's service ID API key in the request body.
// Neither reaches an error: every error from softlayer-go becomes an
// *APIError whose strings have the call's keys replaced by a redaction
// marker (a server may echo what it was sent). softlayer-go's Debug logging,
// which prints request bodies, is never enabled, and its LastCall record
// (which holds the parameters) lives only in a per-call session that is
// dropped. Plain http endpoints are accepted only on loopback.
//
// # What this package does NOT do
//
// It does not upload or encrypt images (see packages cos and e2e), wrap keys
// (kms), or create IAM authorizations (iam). It never deletes, cancels or
// edits anything: no template deletion (of yours or anyone's), no removal
// of a template's locations, no server cancellation, no reloads. It does
// not handle billing, quotes or saved orders beyond verifyOrder's dry run,
// does not choose VLANs or prices, does not share templates between
// accounts, and does not speak the XML-RPC endpoint or refresh IAM tokens
// (it authenticates with API keys only).
package classic
