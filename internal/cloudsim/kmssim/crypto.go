package kmssim

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
)

// ciphertextFormat names the simulator's wrapped-key format. Real Key
// Protect ciphertexts are also base64 JSON, with other fields; clients must
// treat them as opaque, and this one is opaque too.
const ciphertextFormat = "cloudsim-gcm-1"

// envelope is what a ciphertext decodes to (base64 of this JSON).
type envelope struct {
	Ciphertext string `json:"ciphertext"`
	IV         string `json:"iv"`
	Version    string `json:"version"`
	Handle     string `json:"handle"` // key version id
}

var errCiphertext = errors.New("kmssim: the ciphertext is invalid or corrupted")

// additionalData binds a wrapped key to its service, instance, key, key
// version and the caller's AAD.
func (s *Server) additionalData(keyID, versionID string, aad []string) []byte {
	var b []byte
	field := func(v string) {
		b = binary.BigEndian.AppendUint32(b, uint32(len(v)))
		b = append(b, v...)
	}
	field(ciphertextFormat)
	field(s.cfg.ServiceName)
	field(s.cfg.InstanceID)
	field(keyID)
	field(versionID)
	b = binary.BigEndian.AppendUint32(b, uint32(len(aad)))
	for _, a := range aad {
		field(a)
	}
	return b
}

func newGCM(material []byte) (cipher.AEAD, error) {
	blk, err := aes.NewCipher(material)
	if err != nil {
		return nil, fmt.Errorf("kmssim: key material: %w", err)
	}
	return cipher.NewGCM(blk)
}

// seal wraps plaintext under version v of key k.
func (s *Server) seal(k *key, v *version, plaintext []byte, aad []string) (string, error) {
	g, err := newGCM(v.material)
	if err != nil {
		return "", err
	}
	nonce := make([]byte, g.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return "", fmt.Errorf("kmssim: generating a nonce: %w", err)
	}
	ct := g.Seal(nil, nonce, plaintext, s.additionalData(k.ID, v.ID, aad))
	env, err := json.Marshal(envelope{
		Ciphertext: base64.StdEncoding.EncodeToString(ct),
		IV:         base64.StdEncoding.EncodeToString(nonce),
		Version:    ciphertextFormat,
		Handle:     v.ID,
	})
	if err != nil {
		return "", fmt.Errorf("kmssim: encoding the ciphertext: %w", err)
	}
	return base64.StdEncoding.EncodeToString(env), nil
}

// open unwraps a ciphertext made by seal for key k and returns the
// plaintext and the version it was wrapped under.
func (s *Server) open(k *key, ciphertext string, aad []string) ([]byte, *version, error) {
	raw, err := base64.StdEncoding.DecodeString(ciphertext)
	if err != nil {
		return nil, nil, errCiphertext
	}
	var env envelope
	if err := json.Unmarshal(raw, &env); err != nil || env.Version != ciphertextFormat {
		return nil, nil, errCiphertext
	}
	var v *version
	for _, cand := range k.versions {
		if cand.ID == env.Handle {
			v = cand
		}
	}
	if v == nil {
		return nil, nil, errCiphertext
	}
	ct, err1 := base64.StdEncoding.DecodeString(env.Ciphertext)
	nonce, err2 := base64.StdEncoding.DecodeString(env.IV)
	if err1 != nil || err2 != nil {
		return nil, nil, errCiphertext
	}
	g, err := newGCM(v.material)
	if err != nil {
		return nil, nil, err
	}
	if len(nonce) != g.NonceSize() {
		return nil, nil, errCiphertext
	}
	pt, err := g.Open(nil, nonce, ct, s.additionalData(k.ID, v.ID, aad))
	if err != nil {
		return nil, nil, errCiphertext
	}
	return pt, v, nil
}
