// Package e2eimage is the root of a Go SDK for IBM Cloud classic End to End
// (E2E) encryption: bring your own encrypted, cloud-init enabled OS image,
// encrypted with a data encryption key (DEK) that only you control, and
// provision encrypted virtual servers from it.
//
// The manual path takes a CentOS box, XenServer's vhd-util, the kp CLI and two
// consoles. This module replaces it with packages that each do one job.
//
// Offline (no cloud SDK in their import graph):
//
//   - vhd: the VHD format (parse, check, stream-write tapdisk-style dynamic VHDs)
//   - xts: AES-XTS over 512-byte sectors with the tapdisk tweak
//   - secret: the types that hold DEKs and API keys and never print them
//   - crn: Cloud Resource Names: root key CRNs (strict) and any CRN's segments
//   - importspec: what IBM documents about imports and exports (OS codes,
//     import regions, size limit, bucket resiliency, export naming)
//   - disk: an image's format by content, and raw, VHD and qcow2 as one virtual disk
//   - doctor: IBM's image requirements checked inside an image, offline
//   - vhdcrypt: the offline verbs: encrypt, decrypt, verify, check, inspect
//
// Cloud, each over IBM's official SDK for its service:
//
//   - kms: Key Protect and Hyper Protect Crypto Services behind one interface
//   - iam: API-key authentication, the IAM objects the flow needs, preflight checks
//   - cos: parallel, resumable uploads into Cloud Object Storage, bucket checks
//   - classic: SoftLayer image import (createFromIcos), export and ordering
//   - audit: the events that prove what happened
//
// Composition:
//
//   - e2e: the facade that composes them (streaming encryption, the whole flow)
//   - e2e/ibmcloud: the real clients for e2e from an API key and endpoints
//     (Connect), and the read-only live check of an account
//
// Command-line programs, thin layers over the packages above:
//
//   - examples/vhdcrypt: the offline tool
//   - examples/e2e: the whole flow (against the simulator without an account)
//   - examples/import: encrypt, upload and import
//   - examples/order: order a server from a template
//   - examples/prepare: make an account ready, and check it
//   - examples/audit: the audit trail of a run
//   - examples/cloudsim: the simulator as a process
//
// Internal packages of the library and the programs:
//
//   - internal/cli: flag handling, exit codes and credentials shared by the programs
//   - internal/endpoint: https only, plain http only to loopback, TLS always verified
//   - internal/httppolicy: every client's redirect rule (same host, no credentials or bodies)
//   - internal/retry: the one retry and poll policy (backoff, jitter, capped Retry-After)
//   - internal/durable: crash-safe writes of small files
//   - internal/flock: exclusive, non-blocking file locks (flock(2))
//   - internal/lockedmem: buffers kept out of swap and core dumps
//   - internal/nocore: no core dumps while keys are in memory
//   - internal/progressbar: byte-count progress for the programs
//   - internal/sampleimage: a small genuine Linux image for demos
//   - internal/scrub: removes account data from recorded responses
//   - internal/units: byte counts for people
//
// Test support:
//
//   - cloudsimtest: a simulated IBM Cloud in another module's own tests,
//     in process, closed when the test ends
//   - internal/simscript: testscript commands that start the simulator for
//     the programs' scripts
//   - internal/cloudsim: a local IBM Cloud for tests and demos, with
//     internal/cloudsim/iamsim, internal/cloudsim/kmssim,
//     internal/cloudsim/s3sim, internal/cloudsim/slsim,
//     internal/cloudsim/atsim and internal/cloudsim/simcore
//   - internal/cli/clitest: the simulator and a finished flow for the programs' tests
//   - internal/testenv: reference vectors and external tools, or skip with a note
//   - internal/imagetest: realistic disk images built with distribution tools
//   - internal/hostimg: hostile disk images (GPT, ext4) built for the doctor's tests
//   - internal/versitygw: a real S3 server for the cos tests
//   - internal/exampletest: runs godoc examples against the simulator
//   - internal/faults: deterministic HTTP fault injection
//   - internal/httppolicy/policytest: redirecting servers for the clients' tests
//   - internal/durable/crashfs: a model file system for power-cut tests
//   - internal/extcheck: keeps testdata/extmod's copies of the examples verbatim
//   - internal/readmetest: runs README.md's commands
//   - internal/repocheck: one home per IBM fact, the dependency rules, this list
//   - test/hostile, test/fuzzall, test/faultflow, test/killflow,
//     test/powercut, test/secrets: the hardening suites (test/README.md),
//     with test/hostile/preflight (the doctor as preflight runs it, in a
//     process of its own), test/internal/hvhd, test/internal/leak,
//     test/internal/lostproxy
//     and test/internal/procs
//   - bench/cmd/doctor, bench/cmd/template, bench/cmd/upload: drivers of
//     the bench/ scripts
//
// vhd, xts, secret, crn, importspec, disk, doctor and vhdcrypt import no
// cloud SDK. The cloud packages do not import one another; only e2e
// composes them. docs/DESIGN.md says why, and internal/repocheck checks it.
//
// This package itself contains no code.
package e2eimage
