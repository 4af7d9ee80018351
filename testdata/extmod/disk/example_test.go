package disk_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"log"
	"os"

	"github.com/e2eimage/e2eimage/disk"
)

// mbrDisk is a raw disk of size bytes whose first sector is an MBR with one
// bootable Linux partition from 1 MiB to the end, and which holds a little
// data at 3 MiB: the smallest thing that is a whole disk to Open.
func mbrDisk(size int) []byte {
	d := make([]byte, size)
	entry := d[446:462]                                              // partition entry 1
	entry[0], entry[4] = 0x80, 0x83                                  // bootable, Linux
	binary.LittleEndian.PutUint32(entry[8:], 2048)                   // first sector: 1 MiB
	binary.LittleEndian.PutUint32(entry[12:], uint32(size/512-2048)) // sectors
	d[510], d[511] = 0x55, 0xAA                                      // MBR signature
	copy(d[3<<20:], "file system data")
	return d
}

// Open a raw disk image and walk its 2 MiB blocks, as an encryptor does.
func ExampleOpen() {
	img := mbrDisk(6 << 20)
	d, err := disk.Open(bytes.NewReader(img), int64(len(img)))
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(d.Format(), d.Size(), "bytes,", d.NumBlocks(), "blocks")

	buf := make([]byte, 2<<20)
	if err := d.ReadBlock(1, buf); err != nil { // bytes 2 MiB to 4 MiB
		log.Fatal(err)
	}
	fmt.Printf("%q\n", buf[1<<20:1<<20+16])
	// A raw disk stores every sector; a qcow2 image or a dynamic VHD only
	// those it holds.
	b, err := d.Block(1)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("block 1 stored:", b.Allocated(), "full:", b.Full)
	// Output:
	// raw disk 6291456 bytes, 3 blocks
	// "file system data"
	// block 1 stored: true full: true
}

// A disk without a partition table is usually a partition or file-system
// image given by mistake: IBM Cloud boots the disk it imports.
func ExampleOpen_noPartitionTable() {
	img := make([]byte, 4<<20)
	binary.LittleEndian.PutUint16(img[1024+56:], 0xEF53) // an ext4 superblock's magic
	_, err := disk.Open(bytes.NewReader(img), int64(len(img)))
	var nt *disk.NoPartitionTableError
	if errors.As(err, &nt) {
		fmt.Println("refused:", nt.Found)
	}
	d, err := disk.Open(bytes.NewReader(img), int64(len(img)), disk.AllowNoPartitionTable())
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("accepted when asked:", d.Format())
	// Output:
	// refused: an ext2/3/4 file system
	// accepted when asked: raw disk
}

// Formats are told by their content, and the ones Open does not read are
// refused with the command that converts them.
func ExampleDetect() {
	img := append([]byte("vhdxfile"), make([]byte, 1<<20)...) // a VHDX file type identifier
	f, err := disk.Detect(bytes.NewReader(img), int64(len(img)))
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(f, "readable:", f.Readable())
	_, err = disk.Open(bytes.NewReader(img), int64(len(img)))
	fmt.Println(errors.Is(err, disk.ErrUnsupportedFormat))
	fmt.Println(err)
	// Output:
	// VHDX readable: false
	// true
	// disk: VHDX images are not supported; convert it to a VHD first: qemu-img convert -f vhdx -O vpc -o subformat=dynamic IN OUT.vhd
}

// A stream (a pipe, standard input) is checked from its first bytes before
// anything is read further: a qcow2 image needs random access.
func ExampleCheckStream() {
	prefix := make([]byte, disk.PrefixSize)
	copy(prefix, "QFI\xfb\x00\x00\x00\x03") // a qcow2 version 3 header starts so
	_, err := disk.CheckStream(prefix)
	fmt.Println(errors.Is(err, disk.ErrNeedRandomAccess))

	f, err := disk.CheckStream(mbrDisk(4 << 20)[:disk.PrefixSize])
	fmt.Println(f, err)
	// Output:
	// true
	// raw disk <nil>
}

// Open an image file, whatever its format; nothing is printed here, since
// the file is the reader's own.
func ExampleOpen_file() {
	f, err := os.Open("disk.qcow2")
	if err != nil {
		log.Fatal(err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		log.Fatal(err)
	}
	d, err := disk.Open(f, fi.Size())
	var backing *disk.BackingFileError
	switch {
	case errors.As(err, &backing):
		log.Fatalf("flatten it first: it needs %s", backing.Name)
	case err != nil:
		log.Fatal(err) // the message names the qemu-img command that converts it
	}
	stored := 0
	for _, err := range d.Blocks() {
		if err != nil {
			log.Fatal(err)
		}
		stored++
	}
	fmt.Printf("%s, %d of %d blocks stored\n", d.Format(), stored, d.NumBlocks())
}
