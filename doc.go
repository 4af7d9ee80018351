// Package e2eimage is the root of a Go SDK for IBM Cloud classic End to End
// (E2E) encryption: bring your own encrypted, cloud-init enabled OS image,
// encrypted with a data encryption key (DEK) that only you control, and
// provision encrypted virtual servers from it.
//
// The manual path takes a CentOS box, XenServer's vhd-util, the kp CLI and two
// consoles. This module replaces it with packages that each do one job:
//
//   - vhd: the VHD format (parse, check, stream-write tapdisk-style dynamic VHDs)
//   - xts: AES-XTS over 512-byte sectors with the tapdisk tweak
//   - kms: Key Protect and Hyper Protect Crypto Services behind one interface
//   - iam: API-key authentication and the authorizations the flow needs
//   - cos: parallel, resumable uploads into Cloud Object Storage
//   - classic: SoftLayer image import (createFromIcos), export and ordering
//   - audit: the events that prove what happened
//   - e2e: the facade that composes them (streaming encryption, the whole flow)
//   - e2e/ibmcloud: the real clients for e2e from an API key and endpoints
//     (Connect), and the read-only live check of an account
//
// vhd and xts import no cloud SDK. Only e2e composes the others. The
// examples directory holds thin command-line programs over e2e, and
// internal/cloudsim a local IBM Cloud for tests and demos.
//
// This package itself contains no code.
package e2eimage
