// Command vhdcrypt encrypts disk images for IBM Cloud classic End to End
// encryption, and decrypts, verifies and inspects them, offline.
//
// Usage:
//
//	vhdcrypt encrypt -in SRC -out DST (-key-file KEY | -key-env NAME) [-workers N] [-size BYTES] [-no-partition-table] [-q]
//	vhdcrypt decrypt -in ENC -out DST (-key-file KEY | -key-env NAME) [-format raw|vhd] [-workers N] [-q]
//	vhdcrypt verify  -in ENC (-key-file KEY | -key-env NAME)
//	vhdcrypt inspect -in FILE [-os-code CODE]
//	vhdcrypt keygen  -out KEY [-bits 256|512]
//
// SRC may be a raw disk image, a fixed VHD, a dynamic VHD (qemu-img,
// tapdisk) or a qcow2 file (compressed clusters included); the output of
// encrypt is the encrypted dynamic VHD that IBM Cloud classic imports. Other
// formats (VHDX, VMDK, VDI, ISO, a qcow2 image with a backing file or its own
// encryption) are refused before any output, with the qemu-img command that
// converts them; so is a raw or qcow2 disk with neither an MBR nor a GPT,
// unless -no-partition-table is given. "-in -" reads standard input: a
// dynamic VHD, or a raw image whose size -size gives. "-out -" writes
// standard output. A file output appears only when complete: it is written
// to a temporary file beside it and renamed.
//
// inspect describes an image (format, sizes, allocation, key hash) and, for
// an unencrypted image file, prints the image doctor's report (package
// doctor): IBM Cloud's requirements for an imported image, read inside it
// (partition table, file systems, kernel, operating system and its OS
// reference code, cloud-init, the ConfigDrive data source, the Xen block
// driver), each passed, failed or not inspected, with the fix. -os-code
// checks that a code names the image's system.
//
// The key (the DEK) is the raw 32 bytes (AES-128-XTS, IBM's "AES 256-bit") or
// 64 bytes (AES-256-XTS, IBM's "AES 512-bit") in a file (-key-file), or the
// same bytes base64-encoded in an environment variable (-key-env). It is
// never taken from the command line, where other users could read it. keygen
// makes a key file with mode 0600 and never overwrites one.
//
// Progress goes to standard error: a bar on a terminal, a line every 10%
// otherwise, and a throughput summary at the end (-q silences both).
//
// Exit codes:
//
//	0  success (verify: the key matches and no damage was found)
//	1  failure (unreadable or malformed input, I/O error, ...)
//	2  usage error (unknown command, bad or missing flags)
//	3  wrong key (decrypt, verify): the key does not match the image's key hash
//	4  damage found (verify): present sectors stored as plaintext zeros (the
//	   defect of vhd-util copy), or structural problems in the VHD
//	5  not importable (inspect): the image doctor found a requirement the
//	   image fails (or an -os-code that contradicts it)
//	6  not inspected (inspect): nothing failed, but the image doctor could
//	   not inspect some requirement (a file system it does not read, or a
//	   structure beyond its limits): the image is not known to be importable
//	130 interrupted (SIGINT, SIGTERM); no partial output file is left
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/e2eimage/e2eimage/internal/nocore"
)

func main() {
	_ = nocore.Disable() // no core file may hold a DEK or an API key
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], &env{
		stdin:  os.Stdin,
		stdout: os.Stdout,
		stderr: os.Stderr,
		lookup: os.LookupEnv,
	})
	stop()
	os.Exit(code)
}
