// Package slsim simulates the SoftLayer REST API (/rest/v3.1) of IBM Cloud
// classic infrastructure closely enough that github.com/softlayer/softlayer-go
// v1.1.7 talks to it unchanged, including the backplane that imports
// End-to-End encrypted VHD images from Cloud Object Storage.
//
// # Using it
//
// New builds a Server from a Config; Handler serves /rest/v3.1/...; Close
// stops the background transactions (imports, exports, provisioning) and
// waits for them. Point softlayer-go at it as at the real endpoint:
//
//	sess := &session.Session{UserName: "apikey", APIKey: ibmCloudAPIKey, Endpoint: url + "/rest/v3.1"}
//
// cloudsim.Start wires a Server to the simulated IAM, COS, Key Protect, HPCS
// and Activity Tracker. README.md lists every method, status name, event
// name and failure reason.
//
// # Wire format
//
// Requests are <Endpoint>/<Service>[/<id>][/<method>].json (the method is
// omitted for getObject, createObject, deleteObject and editObject, chosen
// by the HTTP verb), parameters as {"parameters":[...]}, and the query
// parameters objectMask, objectFilter and resultLimit=<offset>,<limit>.
// Authentication is HTTP Basic apikey:<IBM Cloud API key> or an IAM
// "Authorization: Bearer" token; anything else is 401 {"error":"Invalid API
// token.","code":"SoftLayer_Exception_Public"}. Errors are
// {"error":...,"code":"SoftLayer_Exception_..."}, which softlayer-go decodes
// into sl.Error: 404 for a missing object or method, 500 for refused
// operations and invalid values (as the real API answers them), 400 for a
// malformed request. A body is never empty: a missing relational object is
// the JSON literal null, a missing list []. List results carry the
// SoftLayer-Total-Items header.
//
// Object masks follow SLDN: without a mask an object carries its local
// properties only (so globalIdentifier and status of an image template
// group, which are relational, need a mask); naming a local property drops
// the other locals; naming an unknown property is an error. Object filters
// support the documented operations (exact, !=, _=, *=, ^=, $=, ~, <, >,
// in, is null, the date operations and orderBy); unknown properties in a
// filter are ignored, as on the real API. Every service offers getObject and
// a get<Property> for each property of its datatype.
//
// # The import backplane
//
// createFromIcos checks synchronously what the real API rejects at once
// (name, a cos://<region>/<bucket>/<object> uri naming a .vhd object,
// ibmApiKey, crkCrn and wrappedDek for an encrypted import, a supported
// operatingSystemReferenceCode), forces cloudInit on for encrypted images
// and BYOL on for encrypted RHEL, and creates a template group that says
// Active with one child in the import data center of the uri's region; the
// import is that child's transaction. A background transaction then, in order:
// exchanges ibmApiKey for an IAM token; checks the bucket with
// ibm-cos-sdk-go (it must exist, be Regional, be in the uri's region and, for
// an encrypted import, in the root key's region) and the object (it must
// exist and be at most MaxImportObjectSize); opens the object as a VHD
// through ranged GETs (never downloading it); requires a key hash exactly
// when the import is encrypted; requires the server-protect -> kms|hs-crypto
// service-to-service authorization; unwraps the wrapped DEK with
// keyprotect-go-client against Key Protect or HPCS as chosen by the CRN;
// checks the DEK against the VHD's key hash; decrypts, with AES-XTS, what it
// needs of the guest disk to check what IBM requires of an image's contents
// (a partition table, a Linux root file system, cloud-init 0.7.7 or later
// with ConfigDrive in its datasource_list; see cloudinit.go), reading ext4
// with its own reader and going on, "not checked", where it cannot read the
// root (XFS, LVM, Btrfs, Windows); then waits
// Config.ImportDuration of simulated time and ends the child's transaction
// with its block devices in place. addLocations copies the template to
// other data centers. Each failure ends the template in ERROR (invented) with
// the reason (a Reason* constant) in status.description, an "Import Failed"
// Event_Log record and a failed audit-log.vsi-image-template.create
// Activity Tracker event.
//
// Virtual guests are created by SoftLayer_Virtual_Guest::createObject or
// SoftLayer_Product_Order::placeOrder, only in a data center where the
// template has a ready copy (Order_InvalidLocation elsewhere), and get
// a provisionDate after Config.ProvisionDuration of simulated time.
//
// # What it does NOT do
//
// It keeps no copy of image bytes: an export streams the original object
// again. It decrypts only the parts of an image its checks read (the real
// platform decrypts the whole disk when it boots); it does not read XFS,
// Btrfs, LVM or LUKS root file systems, the RPM database, ds-identify's
// configuration or the kernel command line, and does not look for
// cloudbase-init in Windows images. Provisioning does not
// re-check the key or the authorization. It has no billing, no XML-RPC or
// SOAP endpoint, no .xml output, no classic usernames or classic API keys,
// no object storage other than COS, no Swift (createFromExternalSource), no
// image sharing, no editObject, no OS reloads, no quotes, no presets and only
// the CLOUD_SERVER package (46) with a small simulated price catalog. State
// lives in memory only. IBM does not document the template status key names,
// the event log names of image imports or the import failure messages; the
// ones here are the simulator's. Contract (and README.md) lists every
// template status, transaction name and placement rule as documented, with
// its source, or invented.
package slsim
