// Package e2e composes the other packages into IBM Cloud classic's End to
// End encryption procedure, from an unencrypted image to a running
// encrypted virtual server. The offline verbs it uses (encrypt, decrypt,
// verify, check, inspect, DEKs and key files) are package vhdcrypt's.
//
// Run composes the other packages into IBM's E2E procedure, one step after
// another: prepare (optional, idempotent IAM set-up), preflight (every
// prerequisite checked before anything is sent, the image by the image
// doctor of package doctor), key (get or generate the DEK
// and wrap it), upload (encrypt while uploading, one stream, no temporary
// file), import (createFromIcos), wait-template, order and wait-server
// (optional) and audit. Plan says what to use; ibmcloud.Connect (package
// e2e/ibmcloud) builds the clients
// from an API key, a root key CRN and endpoints; Prepare and Preflight run
// only the first steps. Every step is idempotent and recorded in a state file
// (State: JSON, mode 0600, written atomically) that holds the wrapped DEK but
// never the DEK or an API key, plus the key-hash nonce and the VHD's unique id
// and timestamp, so that a re-run after a failure or a kill re-encrypts to the
// same bytes, sends only the missing parts of an interrupted upload, and never
// uploads, imports or orders twice.
//
// The flow deletes nothing it did not start (an aborted multipart upload is
// its own) and creates no buckets or service instances. A run holds an
// exclusive lock on its state file (flock(2) on <state>.lock) from start
// to end: a second run of the same state fails at once (ErrStateLocked),
// and a killed run's lock goes with its process. Systems without flock(2)
// (Windows) run unlocked.
//
// The first steps:
//
//	clients, err := ibmcloud.Connect(ibmcloud.Config{APIKey: apiKey, RootKeyCRN: rootKeyCRN})
//	...
//	res, err := e2e.Run(ctx, e2e.Plan{
//		Image: image, Name: "web", Bucket: bucket, StatePath: "web.e2e-state.json",
//		KeyService: clients.Keys, COS: clients.COS, Classic: clients.Classic, ImportAPIKey: importKey,
//	})
//
// Plan takes the services as small interfaces of this package
// (ObjectStore, ImageService, AuditSource; kms.KeyService for the key
// service), so that a test or another implementation can stand in. The
// default DEK is 32 bytes, generated and wrapped by the key service. An
// API key the preparation creates for the import service ID and nobody
// saves (Plan.SaveAPIKey) belongs to the run: it is deleted once the import
// is done. A service that cannot be reached at all is reported once as an
// *UnreachableError, apart from failed checks.
//
// # What this package does not do
//
//   - It creates no buckets, key instances or root keys; it checks them.
//   - Encryption itself, and its limits, are package vhdcrypt's.
package e2e
