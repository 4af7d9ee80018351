// Package xts implements AES-XTS (IEEE Std 1619-2007, NIST SP 800-38E) over
// 512-byte disk sectors, with the sector tweak that blktap's tapdisk uses
// for encrypted VHDs on IBM Cloud classic.
//
// A Cipher is made once from a data encryption key (DEK) and then encrypts
// or decrypts any number of whole, consecutive sectors per call:
//
//	c, err := xts.NewCipher(dek) // 32 bytes: AES-128-XTS, 64 bytes: AES-256-XTS
//	...
//	err = c.EncryptSectors(block, block, firstSector) // in place
//
// # Keys
//
// A 32-byte key selects AES-128-XTS and a 64-byte key AES-256-XTS. The first
// half of the key encrypts the data and the second half encrypts the tweak,
// as IEEE 1619 specifies (Key1 || Key2). IBM's documentation calls these "AES
// 256-bit" and "AES 512-bit" keys, counting both halves. Any other length is
// rejected with ErrKeySize, and a key whose two halves are equal with
// ErrWeakKey (IEEE 1619-2018 and FIPS 140-3 require Key1 != Key2).
//
// # Tweak
//
// Every 512-byte sector is one XTS data unit. Its tweak is the guest sector
// number (the virtual disk's LBA, not an offset in the VHD file) written as
// a 32-bit little-endian integer followed by 12 zero bytes: tapdisk's
// "plain" IV. For sector numbers below 2^32 this is the same tweak as
// golang.org/x/crypto/xts, which writes the sector number as a 64-bit
// little-endian integer, and the same as IEEE 1619's data unit sequence
// number. For sector numbers of 2^32 and above only the low 32 bits are
// used, exactly as tapdisk does, so sector n and sector n+2^32 share a tweak.
// That never happens on a VHD: its largest size, 2040 GiB, is 0xFF000000
// sectors, all below 2^32. Sector numbers passed to this package may still
// be any uint64 and they wrap in the same way within one call.
//
// # What this package does not do
//
//   - It gives confidentiality only: no integrity and no authentication. A
//     changed ciphertext sector decrypts, without any error, to unpredictable
//     plaintext, and a sector copied to the same position of another disk
//     with the same key decrypts there. Whoever needs to detect tampering
//     must add a MAC or a signature elsewhere.
//   - It is deterministic: there is no IV randomisation. The same plaintext
//     written to the same sector with the same key always gives the same
//     ciphertext, so an observer of two versions of a disk learns which
//     16-byte blocks of which sectors changed.
//   - It has no ciphertext stealing: it encrypts whole 512-byte sectors
//     only, and any other length is rejected with ErrLength.
//   - It does not manage keys: it never generates, stores, wraps or zeroes a
//     DEK. A Cipher keeps only the expanded AES key schedules (which, for
//     AES, contain the key), never a separate copy of the key bytes, and
//     prints as a fixed string that contains no key material.
//   - It knows nothing about the VHD format: callers pass the guest sector
//     number of the first sector of the data they hand over.
//
// A Cipher is safe for concurrent use by multiple goroutines; EncryptSectors
// and DecryptSectors allocate nothing and never panic, whatever their input.
//
// # Speed
//
// This version uses crypto/aes for the block cipher (which itself uses AES-NI
// where the processor has it) with word-sized tweak arithmetic and no
// per-call allocation.
package xts
