// Package disk tells what an image file is from its content and opens the
// ones it can read as a virtual disk, for the encryptor and the image
// doctor alike.
//
// Detect recognises raw disks, VHD (fixed, dynamic, differencing), qcow2
// (versions 2 and 3) and qcow version 1, QED, VHDX, VMDK (sparse extents
// and text descriptors), VDI, Parallels and ISO 9660/UDF optical images,
// by their magic numbers and never by a file name. DetectPrefix does the
// same from the first bytes of a stream. ProbeTable tells whether a disk
// starts with an MBR or a GPT, and what it starts with otherwise.
//
// Open reads raw disks, fixed and dynamic VHDs and qcow2 images, and
// refuses everything else with a typed error whose message names the
// format and the qemu-img command that converts it to a VHD
// (*UnsupportedFormatError, matching ErrUnsupportedFormat). A raw or qcow2
// disk without a partition table is refused (*NoPartitionTableError) unless
// AllowNoPartitionTable is given: IBM Cloud boots the disk it imports. The
// result, a *Disk, presents the guest's bytes through ReadAt whatever the
// container, and its allocation in 2 MiB blocks with a 512-byte sector
// bitmap each (Block, in vhd.BlockInfo's shape), so that an encryptor can
// leave unallocated and zero clusters of a qcow2 image unallocated in its
// VHD output as it does for a dynamic VHD's absent blocks. A qcow2 image
// arriving as a stream cannot be read (its tables point anywhere in the
// file): CheckStream returns *NeedRandomAccessError for it.
//
// # Why go-qcow2reader
//
// qcow2 is read with github.com/lima-vm/go-qcow2reader, the reader Lima uses
// to convert the cloud images it boots: a pure-Go io.ReaderAt over the
// virtual disk that lets its user register the decompressors (this package
// registers its own for zlib and zstd, from klauspost/compress: one read and
// one inflate per compressed cluster, see qcow2inflate.go), reports
// each cluster's status (allocated, zero, compressed) through Extent, and
// caches only 16 L2 tables, so that memory does not grow with the image.
// The alternative, shelling out to qemu-img, needs a tool the user may
// not have and a second process to watch.
//
// What go-qcow2reader does not do, and how this package deals with it: it
// does not read encrypted images (refused here with ErrEncrypted), external
// data files (refused), or snapshots other than the active one (ignored, as
// qemu-img convert does); it opens a backing file next to the image by
// itself, which this package prevents (the image is refused with
// *BackingFileError naming the file, before the library sees it, and the
// library is never given the file's name); it trusts header sizes it
// allocates from (the L1 table size, the cluster size), which this package
// bounds first (cluster_bits 9 to 21, at most 32 MiB of L1 table, inside
// the file); it logs warnings about dirty, corrupt and extended-L2 images
// through the standard logger, which this package avoids by refusing those
// images with a typed error and the qemu-img command that repairs or
// converts them. It reads one qcow2 file and never writes.
//
// What this package does NOT do: it reads no differencing VHD, VHDX, VMDK,
// VDI, QED or Parallels image (qemu-img converts them), does not follow
// backing chains, and does not look inside the disk beyond the partition
// table signature; reading file systems is package doctor's job.
package disk
