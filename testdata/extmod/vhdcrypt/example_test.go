package vhdcrypt_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"log"
	"os"
	"path/filepath"

	"github.com/e2eimage/e2eimage/vhd"
	"github.com/e2eimage/e2eimage/vhdcrypt"
)

// exampleDisk is a 6 MiB raw disk with data in its first and last blocks
// and an all-zero block between them. Its first sector is an MBR with one
// Linux partition from 1 MiB to the end: the encryptor refuses a raw disk
// without a partition table unless told otherwise (WithoutPartitionTable).
func exampleDisk() []byte {
	disk := make([]byte, 6<<20)
	copy(disk, "bootloader")
	entry := disk[446:462]                                      // partition entry 1
	entry[0], entry[4] = 0x80, 0x83                             // bootable, Linux
	binary.LittleEndian.PutUint32(entry[8:], 2048)              // first sector (1 MiB)
	binary.LittleEndian.PutUint32(entry[12:], (6<<20)/512-2048) // sectors
	disk[510], disk[511] = 0x55, 0xAA                           // MBR signature
	copy(disk[5<<20:], "root filesystem")
	return disk
}

// Encrypt a raw disk image in memory, then decrypt it back.
func ExampleEncryptImage() {
	ctx := context.Background()
	dek, err := vhdcrypt.NewDEK(vhdcrypt.AES256XTS) // IBM's "AES 512-bit"
	if err != nil {
		log.Fatal(err)
	}
	defer dek.Zero()

	disk := exampleDisk()
	var encrypted bytes.Buffer
	if err := vhdcrypt.EncryptImage(ctx, &encrypted, bytes.NewReader(disk), dek); err != nil {
		log.Fatal(err)
	}

	var decrypted bytes.Buffer
	if err := vhdcrypt.DecryptImage(ctx, &decrypted, bytes.NewReader(encrypted.Bytes()), dek); err != nil {
		log.Fatal(err)
	}
	fmt.Println("round trip:", bytes.Equal(disk, decrypted.Bytes()))
	fmt.Println("DEK prints as", dek)
	// Output:
	// round trip: true
	// DEK prints as [REDACTED]
}

// The output's size is known before it is produced, as an uploader needs.
func ExampleNewEncryptor() {
	ctx := context.Background()
	dek, err := vhdcrypt.NewDEK(vhdcrypt.AES128XTS)
	if err != nil {
		log.Fatal(err)
	}
	defer dek.Zero()

	enc, err := vhdcrypt.NewEncryptor(ctx, bytes.NewReader(exampleDisk()), dek, vhdcrypt.WithWorkers(2))
	if err != nil {
		log.Fatal(err)
	}
	allocated, total := enc.AllocatedBlocks()
	fmt.Printf("%d of %d blocks stored, %d bytes to upload\n", allocated, total, enc.Size())

	// Pull the output, as an HTTP request body or SDK uploader would.
	body := enc.Reader()
	defer body.Close()
	n, err := io.Copy(io.Discard, body)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("read", n, "bytes")
	// Output:
	// 2 of 3 blocks stored, 4203008 bytes to upload
	// read 4203008 bytes
}

// Check a key against an encrypted image without decrypting it.
func ExampleVerifyKey() {
	ctx := context.Background()
	right, _ := vhdcrypt.NewDEK(vhdcrypt.AES256XTS)
	wrong, _ := vhdcrypt.NewDEK(vhdcrypt.AES256XTS)
	var encrypted bytes.Buffer
	if err := vhdcrypt.EncryptImage(ctx, &encrypted, bytes.NewReader(exampleDisk()), right); err != nil {
		log.Fatal(err)
	}
	fmt.Println(vhdcrypt.VerifyKey(ctx, bytes.NewReader(encrypted.Bytes()), right))
	fmt.Println(vhdcrypt.VerifyKey(ctx, bytes.NewReader(encrypted.Bytes()), wrong))
	// Output:
	// <nil>
	// vhdcrypt: the key does not match the image's key hash
}

// Encrypt a file into another; the destination appears only when complete.
func ExampleEncryptFile() {
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "e2e-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	src := filepath.Join(dir, "disk.raw")
	if err := os.WriteFile(src, exampleDisk(), 0o600); err != nil {
		log.Fatal(err)
	}
	keyFile := filepath.Join(dir, "dek.bin")
	dek, _ := vhdcrypt.NewDEK(vhdcrypt.AES256XTS)
	if err := vhdcrypt.WriteKeyFile(keyFile, dek); err != nil { // mode 0600, never overwritten
		log.Fatal(err)
	}

	dek, err = vhdcrypt.ReadKeyFile(keyFile)
	if err != nil {
		log.Fatal(err)
	}
	dst := filepath.Join(dir, "disk.vhd")
	if err := vhdcrypt.EncryptFile(ctx, dst, src, dek); err != nil {
		log.Fatal(err)
	}
	f, err := os.Open(dst)
	if err != nil {
		log.Fatal(err)
	}
	defer f.Close()
	info, err := vhdcrypt.Inspect(ctx, f)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(info.Format, info.Creator, "encrypted:", info.Encrypted, "blocks:", info.AllocatedBlocks, "of", info.Blocks)
	// Output:
	// dynamic VHD tap encrypted: true blocks: 2 of 3
}

// Find the damage that vhd-util copy does to partially allocated blocks: the
// image below marks every sector of its block present, but half of them were
// never encrypted and are stored as zeros, which tapdisk would "decrypt"
// into garbage.
func ExampleCheck() {
	ctx := context.Background()
	dek, _ := vhdcrypt.NewDEK(vhdcrypt.AES256XTS)
	var nonce [32]byte
	kh := vhd.ComputeKeyHash(nonce, dek.Bytes())
	layout := &vhd.Layout{Size: 2 << 20, Allocated: []vhd.Bitmap{vhd.FullBitmap()}, KeyHash: &kh}
	var img bytes.Buffer
	w, err := vhd.NewWriter(&img, layout)
	if err != nil {
		log.Fatal(err)
	}
	block := make([]byte, vhd.BlockSize)
	for i := range vhd.BlockSize / 2 {
		block[i] = byte(i*7 + 1) // stands for ciphertext; the second half stays zero
	}
	if err := w.WriteBlock(0, block); err != nil {
		log.Fatal(err)
	}
	if err := w.Close(); err != nil {
		log.Fatal(err)
	}

	report, err := vhdcrypt.Check(ctx, bytes.NewReader(img.Bytes()))
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("ok:", report.OK())
	fmt.Println("damaged sectors:", report.ZeroPresentSectors, "in blocks", report.ZeroPresentBlocks)
	// Output:
	// ok: false
	// damaged sectors: 2048 in blocks [0]
}
