// Package vhdcrypt turns a disk image into the encrypted VHD that IBM Cloud
// classic End to End encryption imports, and back, offline: it links no
// cloud SDK, so a tool built on it (examples/vhdcrypt) needs no network and
// carries no cloud client. Package e2e uses it for the cloud flow.
//
// The verbs:
//
//   - EncryptImage / NewEncryptor / EncryptFile: raw, fixed VHD, dynamic
//     VHD or (from a file) qcow2 in, tapdisk-style encrypted dynamic VHD out.
//   - DecryptImage / NewDecryptor / DecryptFile: encrypted VHD in, raw
//     image or unencrypted dynamic VHD out.
//   - VerifyKey (key only, metadata only), VerifyImage (key and damage),
//     Check (damage and structure) and Inspect (a human summary).
//   - NewDEK, DEKFromBytes, ReadKeyFile, WriteKeyFile, KeyFromEnv: DEKs.
//
// # Output format
//
// The encrypted image is what blktap's tapdisk reads on XenServer (see
// ../docs/FORMAT.md): a dynamic VHD with creator "tap" 1.3, a batmap
// whose key hash is SHA-256(nonce || DEK), and every present data sector
// encrypted with AES-XTS (tweak: the guest sector number). A 32-byte DEK
// (AES128XTS) gives AES-128-XTS and a 64-byte DEK (AES256XTS) AES-256-XTS,
// what IBM calls "AES 256-bit" and "AES 512-bit". As vhd-util copy does,
// and as IBM's documented check (vhd-util key -C) assumes, the key hash
// nonce is 32 zero bytes (WithRandomNonce trades that for hashes that do not
// reveal a shared key; see its risk). Unlike vhd-util copy, an encrypted
// input is refused (ErrAlreadyEncrypted), and partially allocated
// blocks are handled correctly: a sector marked present always decrypts to
// the source's bytes.
//
// # Inputs
//
// The input is an io.Reader. When it is also an io.ReaderAt of known size
// (an *os.File holding a regular file or a block device, an
// *io.SectionReader, a *bytes.Reader: anything with ReadAt and Size) it is
// read with random access, from offset 0, and workers read blocks in
// parallel. Anything else is a stream, read once, front to back.
//
// What the input holds is told from its content, never from a file name,
// by package disk: a raw disk, a fixed or dynamic VHD, or a qcow2 image
// (versions 2 and 3, zlib- or zstd-compressed clusters included; from a
// file only, since its tables point anywhere in the file). Everything else
// is refused before any output is written (EncryptFile leaves no file,
// EncryptImage writes nothing), with disk's typed error naming the format
// and the qemu-img command that converts it: VHDX, VMDK, VDI, QED,
// Parallels and differencing VHDs (*disk.UnsupportedFormatError), ISO
// images (the same), a qcow2 image with a backing file
// (*disk.BackingFileError) or encrypted by qcow2 itself (*disk.FeatureError,
// disk.ErrEncrypted), a qcow2 stream (*disk.NeedRandomAccessError). A raw or
// qcow2 disk that starts with neither an MBR nor a GPT (random bytes, a
// partition or file-system image given by mistake) is refused too
// (*disk.NoPartitionTableError), unless WithoutPartitionTable is given:
// IBM Cloud boots the disk it imports. What the output stores depends on
// the input:
//
//	input                        output allocation              extra cost
//	dynamic VHD, file            the source's blocks and        none: the BAT and bitmaps
//	                             sector bitmaps (partial         say what is stored
//	                             bitmaps kept, tapdisk-style)
//	dynamic VHD, stream          the source's blocks, each      none
//	                             written full (absent sectors
//	                             as encrypted zeros)
//	qcow2, file                  the blocks with a stored       none: the cluster tables
//	                             cluster, sector bitmaps of     say what is stored
//	                             the stored clusters (zero and  (compressed clusters are
//	                             unallocated clusters absent)   decompressed once)
//	raw or fixed VHD, file       non-zero blocks only, full     a parallel zero scan: the
//	                                                            zero blocks and the first
//	                                                            64 KiB of the others
//	raw or fixed VHD, stream     every block, full              none; needs WithSize
//
// Why: the VHD's block table comes before the blocks, and the output is
// written front to back without seeking (so it can go to a pipe or an
// upload), so the allocation must be known before the first byte. A dynamic
// VHD states it in its header. For a raw file, the zero blocks are found by
// reading the file before encrypting (blocks in the holes of a sparse
// file are known to be zero without being read, and a block is read only up
// to its first non-zero 64 KiB, so a block with data near its start costs one
// small read); the encryption pass then reads the non-zero blocks in full,
// and the memory cost is one bool per 2 MiB block. A raw stream cannot be scanned ahead,
// so its output has every block allocated and is as large as the disk; for
// sparse output give a file, or convert the image to a dynamic VHD first
// (qemu-img convert -O vpc). A dynamic VHD's blocks are taken as allocated
// even when their data happens to be all zero: dropping those would mean
// reading every block before writing the header; the same holds for a
// qcow2 image's stored clusters (qemu-img convert, which makes most qcow2
// images, stores no all-zero cluster in the first place).
//
// Whether the image will boot on IBM Cloud (its partitions, operating
// system, cloud-init, Xen drivers) is package doctor's question, not this
// package's: open the image with disk.Open and pass it to doctor.Examine
// (examples/vhdcrypt inspect prints that report).
//
// A raw stream's size is declared with WithSize (ErrNeedSize otherwise). A
// fixed VHD looks like a raw image until its last 512 bytes, its footer:
// declare the disk size (the stream's length minus 512) and the footer is
// recognised and dropped; declaring the length is detected and refused
// (ErrFixedVHDStream) rather than encrypting the footer as disk data. A raw
// image whose size is not a multiple of 512 is padded with zeros to a whole
// sector (the VHD format counts in sectors); other sizes, up to vhd.MaxSize
// (2040 GiB), need not be multiples of the 2 MiB block size.
//
// # Outputs
//
// NewEncryptor and NewDecryptor do everything that can fail early (input
// detection, key check, layout planning) and then know the output's exact
// size (Size), which an uploader needs. WriteTo pushes the output to any
// io.Writer; Reader pulls it (an io.ReadCloser needing no io.Pipe, for
// request bodies and SDK uploaders). The output is never seeked. EncryptFile,
// DecryptFile and WriteFile write files all or nothing: a temporary file
// beside the destination (mode 0600) is synced and renamed into place, and
// removed on any error or cancellation.
//
// # Concurrency and memory
//
// Each verb runs a pipeline: one reader goroutine walks the input's blocks
// in order (for a file it only hands out block numbers, and the workers
// read), N workers (WithWorkers, default GOMAXPROCS) encrypt or decrypt
// 2 MiB blocks in place, and the writer stage emits them in order. The
// stages share a fixed pool of 2*N+2 block buffers, so memory does not grow
// with the image: about 12 MiB of buffers for 2 workers, plus per-block
// metadata (the input's block table and one slice header per block, about
// 30 bytes per 2 MiB block, 30 MiB for a 2040 GiB disk). The output does not
// depend on N. Cancelling the context stops every stage promptly and the
// verb returns the first error; no goroutine outlives a verb (a Reader's
// goroutines live until it is read to the end or closed). A stream input
// that blocks in Read delays cancellation until that Read returns.
//
// # What this package does not do
//
//   - No integrity: AES-XTS, as tapdisk uses it, hides the data but does
//     not detect changes to it (see package xts). Check finds one specific,
//     known damage, not tampering.
//   - No repair: an image damaged by vhd-util copy's defect is reported
//     (Check, VerifyImage), not fixed; re-encrypt its source instead.
//     Decrypting it gives what tapdisk would show, garbage included.
//   - No differencing VHDs and no format other than raw, VHD and qcow2
//     (disk.ErrUnsupportedFormat), no backing files, no resizing, no
//     compression, no conversion between raw and fixed VHD.
//   - No key management: DEKs come from NewDEK, a key file or the
//     environment; wrapping them with Key Protect or HPCS is package kms's
//     job, uploading is package cos's.
//   - It does not make a DEK safe in memory beyond what package
//     package secret does (redaction and best-effort zeroing).
package vhdcrypt
