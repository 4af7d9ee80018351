// Package cos moves images into and out of IBM Cloud Object Storage, over
// the official SDK (github.com/IBM/ibm-cos-sdk-go): parallel, verified,
// resumable multipart uploads from any io.Reader, parallel or streaming
// downloads, and the bucket checks that E2E image import needs.
//
// # Clients
//
// New takes a Config: a region, an endpoint type (public, private, direct)
// or an explicit endpoint, and either an IBM Cloud API key (the SDK's ibmiam
// credentials fetch and refresh IAM tokens) or HMAC keys. TLS verification
// cannot be turned off, and plain http is accepted only for loopback hosts,
// such as a local test server. Keys are secret.String values that never
// print.
//
// # Uploads
//
// Upload does not use the SDK's s3manager: it needs to resume, to retry a
// part from its own bytes, to read an io.ReaderAt without copies and to keep
// a stream's memory bounded, which s3manager does not do. Its engine is
// built on the SDK's CreateMultipartUpload, UploadPart,
// CompleteMultipartUpload, AbortMultipartUpload and ListParts calls; the
// SDK still signs requests, fetches IAM tokens and retries each request.
//
//   - Parts: DefaultConcurrency in flight; DefaultPartSize for a stream of
//     unknown length, which caps it at MaxParts × 16 MiB = 156.25 GiB (above
//     ImportMaxSize); for a known size the part size grows so that MaxParts
//     is never exceeded, up to MaxObjectSize.
//   - Memory: a stream is read into at most concurrency+1 part buffers; an
//     io.ReaderAt of known size is sent as sections of itself.
//   - Integrity: every request body carries a Content-MD5 that the server
//     checks. The whole object is then checked: its ETag against the MD5
//     (or, for multipart, the MD5 of the part MD5s and "-N") computed here,
//     its size, and the SHA-256 of the bytes read, stored as
//     x-amz-meta-sha256 when it is known before the object is created (a
//     single PUT, or WithSHA256). A mismatch is an error wrapping
//     ErrVerify; a nil error means Result.Verified. Bodies are signed as
//     UNSIGNED-PAYLOAD under HMAC: Content-MD5 covers them and TLS the
//     connection, and it spares a second hash of every byte.
//   - Failure: an *UploadError carries the upload ID and the parts done.
//     By default the multipart upload is aborted, so nothing is left behind;
//     WithResumable keeps it after failures a retry can fix, WithKeepOnCancel
//     also after cancellation, and Resume then sends only what is missing
//     (after checking what is there). WithCheckpoint saves the state as the
//     upload goes, for a process that may be killed.
//   - Lost answers: a request can do its work on the server and still fail
//     at the client (the connection drops before the answer arrives).
//     CreateMultipartUpload is not idempotent, so it is sent without the
//     SDK's retries and retried here; after an attempt whose outcome was not
//     seen, the uploads of the key that appeared meanwhile are aborted,
//     found by comparing the key's pending uploads before and after (no
//     clocks), and never adopted; when more appeared than attempts could
//     have made, another uploader is at work and none is aborted. When the
//     answer to CompleteMultipartUpload is lost and the upload is then gone,
//     the object is accepted only if its HEAD shows the size, the composite
//     ETag and the stored SHA-256 (when WithSHA256 stored one) of what was
//     sent; otherwise the error wraps ErrVerify.
//
// # Reading with random access
//
// OpenObject returns an *Object, an io.ReaderAt of known size over ranged
// GETs (If-Match on the ETag seen at the start), so that package vhdcrypt
// reads a remote image with random access and its workers fetch blocks in
// parallel: an image in COS is encrypted into a new object without a byte
// of it on local disk. Reads that move forward through the object are
// served from read-ahead windows (WithReadAhead: 16 MiB, one GET each, two
// ahead), so that reading an image once costs about the GETs of a copy of
// it in parts. List and Delete find and remove objects by name,
// for the objects an image export writes.
//
// # What this package does NOT do
//
// It does not encrypt: images are encrypted before they reach it (package
// e2e), and COS server-side encryption is the bucket's business (CreateBucket
// can ask for Key Protect). It does not manage lifecycle rules, versioning,
// ACLs, CORS, retention or replication, does not delete buckets or list
// buckets, does not use Aspera, and does not copy objects server-side. It does not
// interrupt a Read that blocks: cancellation takes effect when Read returns.
package cos
