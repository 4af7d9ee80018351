// Package secret holds the two kinds of secret that e2eimage handles, data
// encryption keys (DEKs) and credentials such as API keys, in types that never
// print themselves.
//
// Every formatting path (fmt verbs including %#v, JSON, text marshalling and
// slog) yields a fixed redaction marker, so a secret that ends up in a log line
// or an error string by mistake reveals nothing. The bytes are reachable only
// through the explicit Bytes and Reveal methods, whose call sites are easy to
// audit. Zero overwrites the material in place.
//
// A DEK's bytes live in a page of their own that is locked into RAM (never
// swapped) and left out of core dumps where the system allows (see
// internal/lockedmem). What this package cannot do: stop a caller, an SDK
// or a string conversion from copying the bytes elsewhere; a String's bytes
// are ordinary memory, since every use reveals them as a Go string anyway.
//
// The package is public so that code in any module can hand the SDK a
// credential it holds as a string (an environment variable, a vault answer):
//
//	apiKey := secret.NewString(os.Getenv("IBMCLOUD_API_KEY"))
//	defer apiKey.Zero()
//
// and a DEK it holds as bytes with NewDEK, which copies them into locked
// memory so that the caller can clear its own slice.
package secret

import (
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"

	"github.com/e2eimage/e2eimage/internal/lockedmem"
)

// Redacted is what every secret prints as.
const Redacted = "[REDACTED]"

// DEK sizes accepted by the encrypted VHD format .
const (
	// DEK256 is a 32-byte key: AES-128-XTS, what IBM calls "AES 256 bit".
	DEK256 = 32
	// DEK512 is a 64-byte key: AES-256-XTS, what IBM calls "AES 512 bit".
	DEK512 = 64
)

// ErrDEKSize is returned for a DEK that is neither 32 nor 64 bytes long.
var ErrDEKSize = errors.New("secret: a DEK must be 32 bytes (AES-128-XTS) or 64 bytes (AES-256-XTS)")

// DEK is a data encryption key. The zero value is an empty key. A DEK must
// not be copied by value after first use if Zero is to clear every copy;
// pass *DEK.
type DEK struct {
	buf *lockedmem.Buffer
}

// NewDEK returns a DEK holding a copy of b. It checks the length only; the
// caller should zero b afterwards if it is not needed.
func NewDEK(b []byte) (*DEK, error) {
	if len(b) != DEK256 && len(b) != DEK512 {
		return nil, fmt.Errorf("%w (got %d bytes)", ErrDEKSize, len(b))
	}
	buf := lockedmem.Alloc(len(b))
	copy(buf.Bytes(), b)
	return &DEK{buf: buf}, nil
}

// GenerateDEK returns a new random DEK of size bytes (DEK256 or DEK512) from
// crypto/rand.
func GenerateDEK(size int) (*DEK, error) {
	if size != DEK256 && size != DEK512 {
		return nil, fmt.Errorf("%w (asked for %d bytes)", ErrDEKSize, size)
	}
	buf := lockedmem.Alloc(size)
	if _, err := rand.Read(buf.Bytes()); err != nil {
		buf.Release()
		return nil, fmt.Errorf("secret: generating a DEK: %w", err)
	}
	return &DEK{buf: buf}, nil
}

// Bytes returns the key material itself (not a copy). Callers must not retain
// it past the DEK's Zero.
func (d *DEK) Bytes() []byte {
	if d == nil {
		return nil
	}
	return d.buf.Bytes()
}

// Len is the key length in bytes, 0 after Zero.
func (d *DEK) Len() int {
	return len(d.Bytes())
}

// Zero overwrites the key material, unlocks its page and empties the DEK.
func (d *DEK) Zero() {
	if d == nil {
		return
	}
	d.buf.Release()
}

// String implements fmt.Stringer with a redaction marker.
func (d *DEK) String() string { return Redacted }

// GoString implements fmt.GoStringer with a redaction marker.
func (d *DEK) GoString() string { return Redacted }

// Format redacts for every verb, including %x and %v.
func (d *DEK) Format(f fmt.State, _ rune) { _, _ = f.Write([]byte(Redacted)) }

// MarshalJSON redacts.
func (d *DEK) MarshalJSON() ([]byte, error) { return []byte(`"` + Redacted + `"`), nil }

// MarshalText redacts.
func (d *DEK) MarshalText() ([]byte, error) { return []byte(Redacted), nil }

// LogValue redacts in log/slog.
func (d *DEK) LogValue() slog.Value { return slog.StringValue(Redacted) }

// String is a secret string such as an API key or an access token. The zero
// value is empty.
type String struct {
	b []byte
}

// NewString wraps s.
func NewString(s string) *String { return &String{b: []byte(s)} }

// Reveal returns the secret. Every call site is a place where the secret
// leaves its wrapper: keep them few and hand the value straight to an SDK.
func (s *String) Reveal() string {
	if s == nil {
		return ""
	}
	return string(s.b)
}

// Empty reports whether no secret is held.
func (s *String) Empty() bool { return s == nil || len(s.b) == 0 }

// Zero overwrites the held copy.
func (s *String) Zero() {
	if s == nil {
		return
	}
	clear(s.b)
	s.b = nil
}

// String implements fmt.Stringer with a redaction marker.
func (s *String) String() string { return Redacted }

// GoString implements fmt.GoStringer with a redaction marker.
func (s *String) GoString() string { return Redacted }

// Format redacts for every verb.
func (s *String) Format(f fmt.State, _ rune) { _, _ = f.Write([]byte(Redacted)) }

// MarshalJSON redacts.
func (s *String) MarshalJSON() ([]byte, error) { return []byte(`"` + Redacted + `"`), nil }

// MarshalText redacts.
func (s *String) MarshalText() ([]byte, error) { return []byte(Redacted), nil }

// LogValue redacts in log/slog.
func (s *String) LogValue() slog.Value { return slog.StringValue(Redacted) }
