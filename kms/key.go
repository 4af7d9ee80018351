package kms

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/e2eimage/e2eimage/crn"

	"github.com/e2eimage/e2eimage/secret"
)

// KeyService is what the E2E flow needs from a key management service: the
// root key's description, and wrapping, unwrapping and generating DEKs with
// it. *Client implements it for Key Protect and for Hyper Protect Crypto
// Services.
//
// DEK ownership: Wrap only reads the DEK it is given; the caller keeps it
// and zeroes it. Unwrap and GenerateDEK return a new DEK that the caller owns
// and must Zero when done.
type KeyService interface {
	// Describe returns the root key's metadata. It does not check that the
	// key is usable; see KeyInfo.Usable.
	Describe(ctx context.Context) (*KeyInfo, error)
	// Wrap encrypts dek (32 or 64 bytes) with the root key.
	Wrap(ctx context.Context, dek *secret.DEK) (WrappedDEK, error)
	// Unwrap decrypts a wrapped DEK. When the root key has been rotated
	// since w was made, the key service also re-wraps the DEK with the
	// newest key version and Unwrap returns that as rewrapped (nil
	// otherwise); store it in place of w.
	Unwrap(ctx context.Context, w WrappedDEK) (dek *secret.DEK, rewrapped *WrappedDEK, err error)
	// GenerateDEK has the key service generate a 32-byte DEK and wrap it.
	GenerateDEK(ctx context.Context) (*secret.DEK, WrappedDEK, error)
}

// WrappedDEK is a DEK encrypted by a root key. It is not secret: only the
// key service can unwrap it.
type WrappedDEK struct {
	// Ciphertext is the base64 text exactly as the key service returned it;
	// this is what an image import is given ("wrapped DEK").
	Ciphertext string
	// KeyVersion is the ID of the root key version that wrapped the DEK,
	// "" when the key service did not say.
	KeyVersion string
}

// KeyState is a key's lifecycle state as Key Protect numbers it (../docs/CLOUD.md
// §1.5).
type KeyState int

// Key states.
const (
	StateUnknown     KeyState = -1 // not known (not a key service value)
	StatePreActive   KeyState = 0  // pre-activation; seen only in events
	StateActive      KeyState = 1  // wraps and unwraps
	StateSuspended   KeyState = 2  // disabled: neither wraps nor unwraps
	StateDeactivated KeyState = 3  // expired: unwraps but does not wrap
	StateDestroyed   KeyState = 5  // deleted
)

// String names the state.
func (s KeyState) String() string {
	switch s {
	case StateUnknown:
		return "Unknown"
	case StatePreActive:
		return "Pre-activation"
	case StateActive:
		return "Active"
	case StateSuspended:
		return "Suspended"
	case StateDeactivated:
		return "Deactivated"
	case StateDestroyed:
		return "Destroyed"
	}
	return "State(" + strconv.Itoa(int(s)) + ")"
}

// KeyType says whether a key is a root key or a standard key.
type KeyType string

// Key types.
const (
	// RootKey is a non-extractable key that wraps other keys.
	RootKey KeyType = "root"
	// StandardKey is an extractable key; it cannot wrap.
	StandardKey KeyType = "standard"
)

// KeyInfo describes a key.
type KeyInfo struct {
	CRN        crn.Key   // the key's CRN (its service, region, instance and ID)
	Name       string    // the key's name
	Type       KeyType   // RootKey or StandardKey
	State      KeyState  // lifecycle state
	Deleted    bool      // whether the key has been deleted
	KeyVersion string    // current key version ID, "" if not reported
	KeyRingID  string    // key ring, "default" unless set
	Created    time.Time // zero if not reported
	Rotated    time.Time // last rotation, zero if never or not reported
}

// Usable returns nil when the key can wrap DEKs (an active root key), or an
// *Error matching ErrKeyDeleted, ErrNotRootKey or ErrKeyNotActive.
func (k *KeyInfo) Usable() error {
	e := &Error{Op: "check", Key: k.CRN.String(), State: k.State}
	switch {
	case k.Deleted || k.State == StateDestroyed:
		e.Kind = ErrKeyDeleted
	case k.Type != RootKey:
		e.Kind = ErrNotRootKey
	case k.State != StateActive:
		e.Kind = ErrKeyNotActive
	default:
		return nil
	}
	return e
}

// CheckKey checks that the client's root key exists, is a root key, is
// Active and belongs to the instance in its CRN. It returns what it found,
// and on failure what to do about it, for a preflight report
// (iam.KeyCheck(func(ctx context.Context) (string, string, error) {
// return kms.CheckKey(ctx, ks) })).
func CheckKey(ctx context.Context, ks KeyService) (detail, fix string, err error) {
	info, err := ks.Describe(ctx)
	if err == nil {
		err = info.Usable()
	}
	if err != nil {
		detail, fix = err.Error(), "check the key CRN and the key's state in the key service"
		var ke *Error
		if errors.As(err, &ke) && ke.Problem() != "" {
			detail = "key " + ke.Key + ": " + ke.Problem()
			if ke.Fix() != "" {
				fix = ke.Fix()
			}
		}
		return detail, fix, err
	}
	return fmt.Sprintf("%s root key %q is %s in %s", info.CRN.Service.DisplayName(), info.Name, info.State, info.CRN.Region), "", nil
}
