// Package vhd reads and writes Virtual Hard Disk (VHD) images in the form
// IBM Cloud classic's storage driver (blktap's tapdisk) uses for End-to-End
// encrypted images.
//
// Reading: Open validates a fixed or dynamic VHD (from qemu-img, tapdisk or
// vhd-util, Hyper-V, VirtualBox) and presents it as a virtual disk: an
// io.ReaderAt over the guest bytes as stored, and the allocated blocks with
// their sector bitmaps, always in BlockSize (2 MiB) units. NewStreamReader
// does the same front to back from an io.Reader for dynamic VHDs whose
// blocks are stored in order. Image.Check (and StreamReader.Check) validate
// an image and, for an encrypted one, find the damage left by the reference
// tool's copy defect: present sectors stored as plaintext zeros.
//
// Choices where the specification leaves room: the virtual size is the
// footer's current size (as Hyper-V, tapdisk and qemu-img for its own
// images read it); a dynamic disk whose last footer is damaged opens with
// the copy at offset 0 and Check reports it; tapdisk's batmap wins over a
// block's bitmap when it marks the block full, as in tapdisk; native block
// sizes from 512 bytes to 256 MiB are read, each block's sector bitmap
// taking at least one sector (for blocks below 4 KiB too, as in tapdisk;
// qemu-img 7.2 gives those no bitmap sector and reads them differently);
// a 0-byte dynamic disk can be written but a 0-byte fixed one cannot
// (qemu-img cannot open it).
//
// Writing: NewWriter writes a tapdisk-style dynamic VHD (creator "tap" 1.3,
// BAT, batmap, optional key hash, block data 4 KiB aligned) as a pure stream
// given the virtual size and the allocation map up front; Layout.FileSize
// gives its exact size before the first byte. WriteFixed writes a fixed VHD.
//
// Every structure read from a file is checked before it is trusted: sizes
// are bounded (MaxSize, MaxBATEntries, MaxNativeBlockSize), nothing is read
// past the end of the file, blocks may overlap neither metadata nor each
// other. Malformed input gives a *FormatError naming the field and its
// offset; no input makes the package panic or allocate more than the file's
// metadata size.
//
// What this package does NOT do: it knows nothing about ciphers. Data of an
// encrypted disk is read and written as stored (ciphertext); encrypting,
// decrypting and checking a key against the key hash beyond KeyHash.Matches
// is the caller's job. It does not read differencing disks (they need their
// parent; Open returns ErrDifferencing naming it), VHDX, or the 511-byte
// footers of pre-2004 Virtual PC images, and it does not modify images in
// place.
package vhd
