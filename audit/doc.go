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
// (*classic.Client retries reads).
//
// API keys never reach an error: errors from IAM and Cloud Logs have the
// keys given with WithSecrets replaced by a redaction marker.
//
// # Names IBM does not document
//
// IBM documents the Activity Tracker actions kms.secrets.wrap,
// audit-log.vsi-image-template.create and audit-log.vsi.provision, and the
// event log's object name "CCI" for virtual servers. It does not document
// the CRNs of classic resources in Activity Tracker events, nor the event
// log's object name and event names for image imports (../docs/CLOUD.md sections
// 6.1 and 8). Query.Matches therefore recognises a template or a server in
// a CRN by the last two segments (resource type naming an image/template
// or a virtual server, resource = id or global identifier), and the event
// log's template object name defaults to "Image" (WithObjectNames).
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
