package xts_test

import (
	"bytes"
	"fmt"
	"log"

	"github.com/e2eimage/e2eimage/xts"
)

// Encrypt one 2 MiB VHD block (4096 sectors) in place, then decrypt it.
// The sector number is the guest LBA of the block's first sector: block 3
// of a VHD starts at sector 3*4096.
func ExampleCipher_EncryptSectors() {
	dek := make([]byte, 64) // a 64-byte DEK selects AES-256-XTS
	for i := range dek {
		dek[i] = byte(7*i + 3) // use a random or KMS-generated key in real code
	}
	c, err := xts.NewCipher(dek)
	if err != nil {
		log.Fatal(err)
	}
	const firstSector = 3 * 4096
	block := bytes.Repeat([]byte("guest data "), 2<<20/11+1)[:2<<20]
	plain := bytes.Clone(block)

	if err := c.EncryptSectors(block, block, firstSector); err != nil {
		log.Fatal(err)
	}
	fmt.Println("ciphertext differs:", !bytes.Equal(block, plain))

	if err := c.DecryptSectors(block, block, firstSector); err != nil {
		log.Fatal(err)
	}
	fmt.Println("round trip:", bytes.Equal(block, plain))
	fmt.Println(c)

	c.Wipe() // zero the expanded keys once done; c refuses to run afterwards
	fmt.Println(c.EncryptSectors(block, block, firstSector))
	// Output:
	// ciphertext differs: true
	// round trip: true
	// xts.Cipher(AES-256-XTS)
	// xts: Cipher was wiped
}

// Keys of the wrong size or with equal halves are refused.
func ExampleNewCipher() {
	_, err := xts.NewCipher(make([]byte, 48))
	fmt.Println(err)
	_, err = xts.NewCipher(make([]byte, 32))
	fmt.Println(err)
	// Output:
	// xts: key must be 32 bytes (AES-128-XTS) or 64 bytes (AES-256-XTS) (got 48 bytes)
	// xts: the data key and the tweak key (the two halves of the key) are equal
}
