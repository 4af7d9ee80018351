package vhd

import (
	"crypto/sha256"
	"crypto/subtle"
)

// KeyHash is the key check stored in tapdisk's batmap header of an encrypted
// VHD: Hash = SHA-256(Nonce || DEK). tapdisk refuses a key whose hash does
// not match. It identifies a key; it is not a key derivation.
type KeyHash struct {
	Nonce [32]byte
	Hash  [32]byte
}

// ComputeKeyHash returns the key hash of key under nonce. vhd-util uses an
// all-zero nonce; a random nonce is equally valid to tapdisk and keeps one
// key from publishing the same hash in two images.
func ComputeKeyHash(nonce [32]byte, key []byte) KeyHash {
	h := sha256.New()
	h.Write(nonce[:])
	h.Write(key)
	k := KeyHash{Nonce: nonce}
	h.Sum(k.Hash[:0])
	return k
}

// Matches reports, in constant time with respect to the hash, whether key is
// the key this hash was computed from.
func (k KeyHash) Matches(key []byte) bool {
	got := ComputeKeyHash(k.Nonce, key)
	return subtle.ConstantTimeCompare(got.Hash[:], k.Hash[:]) == 1
}
