// Package importspec holds what IBM documents about importing images into,
// and exporting them from, classic infrastructure: the operating systems an
// import accepts and their reference codes, the Cloud Object Storage
// regions and data centers an import reads from and lands in, the largest
// disk it takes, how a bucket's location constraint tells its resiliency,
// and how an export names the objects it writes.
//
// Each of these facts has its one home here, with its source next to it;
// doctor (offline), classic and cos (cloud) use them from here. The
// package is a leaf: it imports only the standard library, links no SDK and
// makes no network call, so the offline image doctor can use it without
// linking a cloud SDK. A test in internal/repocheck fails when another
// package defines one of these facts again.
//
// What this package does not do: it asks no service. The operating systems
// an account may import are the ones
// SoftLayer_Virtual_Guest_Block_Device_Template_Group::
// getVhdImportSoftwareDescriptions returns (classic.Client.OSReferenceCodes);
// the list here is the one IBM's documentation gives, which may lag.
package importspec
