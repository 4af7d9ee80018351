// Package doctor checks, before anything is encrypted or uploaded, that a
// disk image meets IBM Cloud classic's requirements for an imported (and
// so an encrypted) image, by reading inside it without mounting it: no
// root, no loop device, no kernel module. It reads the partition table,
// each file system's metadata and a few small files, through the virtual
// disk package disk gives (raw, VHD or qcow2 alike).
//
// Examine reports each requirement as Pass, Fail or NotInspected, with
// what was found and, when it did not pass, how to fix it:
//
//   - a partition table (MBR or GPT), its partitions and their file
//     systems, and a kernel in /boot or on a separate boot partition;
//   - a virtual disk of at most 100 GB, and an /etc/fstab that mounts
//     nothing from another disk at boot ("Imports are limited to 100 GB
//     disks. Only the boot volume is imported, not secondary disks.",
//     ibm-cloud-docs/image-templates import-image.md);
//   - for a Linux root on ext2/3/4 or XFS: the operating system from
//     /etc/os-release (or /usr/lib/os-release, following symbolic links),
//     its classic OS reference code (OSCodeFor) and whether it is on IBM's
//     list of supported 64-bit systems (import-image.md, "Supported
//     operating systems"), a 64-bit x86 executable, cloud-init 0.7.7 or
//     later (image_cloud-init.md, "Linux requirements"), the ConfigDrive
//     data source left in cloud-init's datasource_list, and a kernel with
//     the Xen block front-end driver (xen-blkfront, built in or as a
//     module);
//   - LVM, Btrfs, LUKS, NTFS (Windows) and unrecognised layouts are
//     detected and reported NotInspected, never passed.
//
// WithOSCode checks an import's OS reference code against the system
// found; Report.OSCode suggests one when the import names none, and
// Report.CheckOSCode refuses one that contradicts the image.
//
// # Libraries
//
// Partition tables and ext2/3/4 are read with github.com/diskfs/go-diskfs
// (v1.9.4), XFS with github.com/masahiro331/go-xfs-filesystem, the XFS
// reader of the VM-image scanners (Trivy reads VM disks with it). They
// were chosen over the alternatives after trying each on images made by
// mkfs.ext4 1.47 and mkfs.xfs 6.1:
//
//   - go-diskfs reads ext4 with current default features (64bit,
//     metadata_csum, flex_bg), checks group descriptor checksums, and
//     offers ReadLink, so symbolic links such as /etc/os-release ->
//     ../usr/lib/os-release and a merged-/usr /lib -> usr/lib are followed
//     (by this package, component by component, as the kernel would);
//     its partition readers check the GPT's CRCs and fall back to the
//     backup GPT. It has no XFS.
//   - masahiro331/go-ext4-filesystem cannot read a symbolic link's target
//     at all (its Open refuses links and its file information hides the
//     inode), and masahiro331/go-disk would be a third library for what
//     go-diskfs already reads (MBR and GPT); neither is used. No library
//     here reads MBR logical partitions: an extended partition is
//     reported NotInspected.
//   - go-xfs-filesystem is the only pure-Go XFS reader; it reads v5
//     (CRC-enabled, reflink, bigtime) file systems. It cannot give a
//     symbolic link's target, so on XFS this package falls back to the
//     paths such links point to on every distribution (/usr/lib/os-release
//     for /etc/os-release, /usr/lib/modules for /lib/modules) and says so
//     in the finding. It logs at debug level to standard error from its
//     init; this package replaces its logger with a no-op one when it is
//     imported.
//
// # Budgets
//
// The image is untrusted input, and both libraries trust what they read:
// go-diskfs allocates the entry array a GPT header claims (of the backup
// header too, when the primary fails its CRCs), follows an ext4 extent
// index wherever it points (a loop recurses until the stack is exhausted:
// masahiro331/go-ext4-filesystem's reader, read for comparison, recurses
// the same way) and reads a directory into one buffer of the size its
// extents claim; go-xfs-filesystem allocates a symbolic link stored in its
// inode at the size the inode claims. So every examination keeps to a
// budget, whatever the bytes (test/hostile measures a process's peak RSS,
// at most 256 MiB, and time, at most 10 s, on crafted images):
//
//   - what a library allocates from a header is bounded before it reads
//     it: both GPT headers (at most 1024 entries of 128 to 1024 bytes; the
//     backup is checked whenever the primary fails its CRCs), the ext
//     superblock (block, group, inode and descriptor sizes and counts
//     against the partition's size; a group descriptor table of at most
//     16 MiB) and the XFS superblock;
//   - each library reads the disk through a guard that counts its reads
//     (at most 256 MiB and 131,072 reads per file system) and checks the
//     context at each one, so a cancelled examination stops at its next
//     read and a library looping on a crafted structure stops at its
//     budget;
//   - the guard checks each ext inode go-diskfs reads before go-diskfs
//     trusts it: an extent tree at most 5 deep (the kernel's limit), with
//     at most 4096 blocks, no block visited twice, extents inside the file
//     system; a directory of at most 8 MiB, by its size and by its
//     extents; a symbolic link's target of at most 4096 bytes. It checks
//     each XFS inode the same way for a link stored in the inode;
//   - files are read whole only up to 1 MiB, dpkg's status file line by
//     line; every call into a library runs under a recover that turns a
//     panic into an error.
//
// A breach is a *LimitError (matching ErrLimit), "not inspected: <the
// structure> exceeds <the limit>": the file system is reported
// NotInspected, a check that would have failed for want of what it could
// not read is NotInspected too, and a partition table beyond its bounds
// fails the partition table check. Nothing is passed that was not read.
//
// # What is read, where
//
// cloud-init's version is read without running Python, in this order:
// dpkg's /var/lib/dpkg/status (a cloud-init stanza "install ok installed";
// the upstream part of its Version), the Python distribution metadata the
// package installs (cloud_init-*.egg-info/PKG-INFO or
// cloud_init-*.dist-info/METADATA under /usr/lib/python3*/ and
// /usr/local/lib/python3*/{dist,site}-packages, as RHEL's RPM ships it),
// then cloudinit/version.py. The RPM database is not read. datasource_list
// is merged as cloud-init does: /etc/cloud/cloud.cfg, then
// /etc/cloud/cloud.cfg.d/*.cfg in lexical order, a later file's value
// replacing an earlier one's; when no file sets it, cloud-init's built-in
// list, which includes ConfigDrive, applies.
//
// What this package does NOT do: it does not read Windows (NTFS), LVM
// logical volumes, Btrfs or encrypted volumes; it does not check that the
// boot loader would really boot (only that a kernel is there); it does not
// run anything from the image; and it does not replace a test boot.
package doctor
