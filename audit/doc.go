// Package audit reads the events that show what one End to End run did:
// the Key Protect or HPCS wrap and unwrap of its root key, the creation of
// its image template and the provisioning of its server. It reads two
// sources and merges them into one model, Event:
//
//   - the classic infrastructure event log (SoftLayer_Event_Log::
//     getAllObjects), through an EventLogPager such as *classic.Client,
//     with object filters built by softlayer-go's filter package
//     (objectName, objectId, eventName, eventCreateDate betweenDate) and
//     resultLimit paging (EventLog);
//   - Activity Tracker events stored in IBM Cloud Logs, through its query
//     API: POST /v1/query with an IAM bearer token (go-sdk-core's
//     IamAuthenticator), a Lucene query and a time window, answered as
//     server-sent events whose results carry each event's CADF JSON in
//     user_data (CloudLogs).
//
// A Query names a time window and the resources of the run (key CRNs,
// template ids and global identifiers, guest ids). Reader.Events returns an
// iter.Seq2 over the matching events of every source, sorted by time. It
// reads one time slice at a time (WithSlice) so that memory holds one
// slice; within a slice the event log is paged with resultLimit and a Cloud
// Logs query that returns its limit is split into two half windows until it
// does not (down to MinSplitWindow, then ErrTooManyEvents). Queries are
// retried after 429, 502/503/504 and connection failures
// (WithQueryAttempts); event log pages are retried by the pager
// (*classic.Client retries reads). A record a source cannot read (a Cloud
// Logs result whose user_data is not an audit event, an event log record
// without a readable date) is skipped and counted, not fatal
// (Reader.Skipped); an error item in the Cloud Logs stream fails the query
// with a QueryError.
//
// API keys never reach an error: errors from IAM and Cloud Logs have the
// keys given with WithSecrets replaced by a redaction marker.
//
// # Names IBM does not document
//
// IBM documents the Activity Tracker actions kms.secrets.wrap and
// kms.secrets.unwrap (Key Protect), audit-log.vsi.provision and
// audit-log.vsi-image-template.create (classic virtual servers; the latter
// for a template captured from an instance), and the event log's object
// name "CCI" for virtual servers (see Documented). It documents no
// Activity Tracker event for an image import or export, not the CRNs of
// classic resources in Activity Tracker events, and not the event log's
// object name or event names for image templates. Therefore:
//
//   - ExpectedActions, what a run should leave, holds documented actions
//     only (the DEK's wrap, the server's provisioning), never one for the
//     import; Missing names the expected actions not found.
//   - Query.Matches tells a template from a server by the documented
//     action (audit-log.vsi-image-template.* or audit-log.vsi.*) and reads
//     only the resource id from the target CRN's last segment.
//   - The event log's template object name defaults to "Image", one of
//     the object names softlayer-python's fixtures list
//     (WithObjectNames changes it).
//
// # What this package does NOT do
//
// It does not prove anything cryptographically: events are what the
// services report, read over TLS, and nothing here verifies signatures or
// completeness. It does not configure Activity Tracker routing or Cloud
// Logs instances, does not read the legacy LogDNA export API (retired in
// March 2025), does not stream live events (tail), and does not run
// background or archive-tier queries (only frequent_search, synchronous,
// at most MaxQueryLimit results per query). The classic event log keeps
// no outcome, so its events have an empty Outcome, and it is searched by
// template and server ids only, not by CRN or global identifier.
package audit
