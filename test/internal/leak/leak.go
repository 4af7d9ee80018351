// Package leak finds secrets in text the hardening tests collect: logs,
// error strings, state files, panic traces, process argument lists.
//
// A key may leak whole or in part, and in many encodings, so a key is
// searched as every window of WindowBytes consecutive bytes in each of
// these forms: raw bytes, lower and upper case hex, Go's %v of a byte slice
// ("[160 167 ...]"), base64 (standard and URL alphabets, aligned windows)
// and the little-endian machine words a goroutine trace prints as function
// arguments ("0xa7a0..."). Strings (API keys, tokens) are searched whole
// and as every window of WindowChars characters.
//
// What this package does NOT do: it cannot find a secret that was
// transformed (hashed, encrypted, compressed); that is the point of those
// transformations.
package leak

import (
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"strings"
)

// WindowBytes is the length of the key fragments searched for: 8 bytes
// (64 bits) of a key is already a leak, and random text matching 8 given
// bytes is vanishingly unlikely.
const WindowBytes = 8

// WindowChars is the length of the string fragments searched for.
const WindowChars = 16

// Find returns a description of the first fragment of key found in s, or ""
// when s holds none.
func Find(s string, key []byte) string {
	if len(key) < WindowBytes {
		if len(key) > 0 && strings.Contains(s, string(key)) {
			return "raw"
		}
		return ""
	}
	for i := 0; i+WindowBytes <= len(key); i++ {
		w := key[i : i+WindowBytes]
		h := hex.EncodeToString(w)
		for form, needle := range map[string]string{
			"raw bytes":    string(w),
			"hex":          h,
			"HEX":          strings.ToUpper(h),
			"decimal":      strings.Trim(fmt.Sprint(w), "[]"),
			"machine word": fmt.Sprintf("%#x", binary.LittleEndian.Uint64(w)),
		} {
			if strings.Contains(s, needle) {
				return fmt.Sprintf("%s of bytes %d..%d", form, i, i+WindowBytes)
			}
		}
	}
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.URLEncoding} {
		e := enc.EncodeToString(key)
		for i := 0; i+12 <= len(e); i += 4 {
			if strings.Contains(s, e[i:i+12]) {
				return fmt.Sprintf("base64 chars %d..%d", i, i+12)
			}
		}
	}
	return ""
}

// Contains reports whether s holds any fragment of key.
func Contains(s string, key []byte) bool { return Find(s, key) != "" }

// FindString returns a description of the first window of secret found in
// s, or "" when none is.
func FindString(s, secret string) string {
	if secret == "" {
		return ""
	}
	if strings.Contains(s, secret) {
		return "whole"
	}
	for i := 0; i+WindowChars <= len(secret); i++ {
		if strings.Contains(s, secret[i:i+WindowChars]) {
			return fmt.Sprintf("characters %d..%d", i, i+WindowChars)
		}
	}
	return ""
}

// Scanner looks for several secrets at once and counts what it found.
type Scanner struct {
	keys    map[string][]byte
	strs    map[string]string
	Scanned int // texts scanned
	Bytes   int // bytes scanned
}

// NewScanner returns an empty scanner.
func NewScanner() *Scanner {
	return &Scanner{keys: map[string][]byte{}, strs: map[string]string{}}
}

// AddKey registers binary key material (a DEK) under a name.
func (sc *Scanner) AddKey(name string, key []byte) { sc.keys[name] = append([]byte(nil), key...) }

// AddString registers a secret string (an API key, a token) under a name.
func (sc *Scanner) AddString(name, s string) {
	if s != "" {
		sc.strs[name] = s
	}
}

// Scan returns one finding per secret found in text ("DEK (hex of bytes
// 0..8) in log"), where says what the text is.
func (sc *Scanner) Scan(where, text string) []string {
	sc.Scanned++
	sc.Bytes += len(text)
	var out []string
	for name, k := range sc.keys {
		if f := Find(text, k); f != "" {
			out = append(out, fmt.Sprintf("%s (%s) in %s", name, f, where))
		}
	}
	for name, s := range sc.strs {
		if f := FindString(text, s); f != "" {
			out = append(out, fmt.Sprintf("%s (%s) in %s", name, f, where))
		}
	}
	return out
}
