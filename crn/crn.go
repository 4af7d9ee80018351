// Package crn parses and formats the Cloud Resource Names of root keys in
// Key Protect and Hyper Protect Crypto Services (ParseKey, strict), and
// splits any other CRN into its segments (Parse). It is the module's one
// CRN parser, and a leaf package (no SDK, no network) so that every package
// naming a key or reading a CRN (kms, iam, classic, audit, e2e) shares one
// type without importing another's SDK.
package crn

import (
	"errors"
	"fmt"
	"strings"
)

// Service is the IAM service name of a key management service, as it appears
// in a key CRN and in IAM policies.
type Service string

// The key management services this package talks to.
const (
	// KeyProtect is IBM Key Protect (../docs/CLOUD.md §1.5).
	KeyProtect Service = "kms"
	// HPCS is IBM Hyper Protect Crypto Services (../docs/CLOUD.md §1.7).
	HPCS Service = "hs-crypto"
)

// String returns the service name as IAM spells it.
func (s Service) String() string { return string(s) }

// DisplayName is the product name, for messages.
func (s Service) DisplayName() string {
	switch s {
	case KeyProtect:
		return "Key Protect"
	case HPCS:
		return "Hyper Protect Crypto Services"
	}
	return string(s)
}

// CRN limits and fixed parts (../docs/CLOUD.md §1.5: key CRN format
// crn:v1:bluemix:public:<kms|hs-crypto>:<region>:a/<account>:<instance>:key:<key-id>).
const (
	crnSegments = 10
	// maxCRNLen bounds the input: the longest valid key CRN is well under
	// 200 bytes (fixed parts, a region, a 32-character account and two UUIDs).
	maxCRNLen = 512
	// maxRegionLen bounds a region name; IBM's are at most 8 characters
	// ("us-south"), this leaves room for new ones.
	maxRegionLen = 32
	accountIDLen = 32 // IBM account IDs are 32 lowercase hex digits
)

// ErrInvalid is what every CRN parsing failure matches with errors.Is.
var ErrInvalid = errors.New("crn: invalid key CRN")

// Error says which part of a key CRN is wrong. It matches ErrInvalid
// with errors.Is.
type Error struct {
	// Field is the CRN segment at fault: "crn", "prefix", "version", "cname",
	// "ctype", "service-name", "location", "scope", "service-instance",
	// "resource-type" or "resource".
	Field string
	// Value is the offending segment (CRNs are not secret), truncated.
	Value string
	// Reason says what is wrong with it.
	Reason string

	anyCRN bool // from Parse: the CRN is not necessarily a key's
}

// Error describes the fault and the expected form.
func (e *Error) Error() string {
	what := "key CRN"
	if e.anyCRN {
		what = "CRN"
	}
	if e.Value == "" {
		return fmt.Sprintf("crn: invalid %s: %s: %s", what, e.Field, e.Reason)
	}
	return fmt.Sprintf("crn: invalid %s: %s %q: %s", what, e.Field, e.Value, e.Reason)
}

// Is reports whether target is ErrInvalid.
func (e *Error) Is(target error) bool { return target == ErrInvalid }

// Key is a parsed root key CRN.
type Key struct {
	Service    Service // KeyProtect or HPCS
	Region     string  // e.g. "us-south"
	AccountID  string  // 32 hex digits
	InstanceID string  // the key service instance GUID
	KeyID      string  // the key's ID (a UUID)
}

// String formats the key CRN in its canonical form.
func (c Key) String() string {
	return "crn:v1:bluemix:public:" + string(c.Service) + ":" + c.Region + ":a/" + c.AccountID + ":" +
		c.InstanceID + ":key:" + c.KeyID
}

// InstanceCRN is the CRN of the key service instance that holds the key.
func (c Key) InstanceCRN() string {
	return "crn:v1:bluemix:public:" + string(c.Service) + ":" + c.Region + ":a/" + c.AccountID + ":" +
		c.InstanceID + "::"
}

// CRN is any Cloud Resource Name split into its ten segments
// (crn:v1:<cname>:<ctype>:<service-name>:<location>:<scope>:
// <service-instance>:<resource-type>:<resource>; IBM Cloud docs, account
// crn.md, "Format of a CRN"). Segments may be empty.
type CRN struct {
	CName, CType, ServiceName, Location, Scope string
	ServiceInstance, ResourceType, Resource    string
}

// Parse splits a CRN of any service into its segments. It checks only the
// shape: ten colon-separated segments, "crn" and "v1" first, at most 512
// bytes. Use ParseKey for a root key CRN, which it checks in full.
// Failures are *Error values matching ErrInvalid.
func Parse(s string) (CRN, error) {
	if len(s) > maxCRNLen {
		return CRN{}, &Error{Field: "crn", Reason: fmt.Sprintf("%d bytes long, more than the %d a CRN can have here", len(s), maxCRNLen), anyCRN: true}
	}
	p := strings.Split(s, ":")
	if len(p) != crnSegments {
		return CRN{}, &Error{Field: "crn", Value: clip(s), Reason: fmt.Sprintf("has %d colon-separated segments, want %d", len(p), crnSegments), anyCRN: true}
	}
	if p[0] != "crn" || p[1] != "v1" {
		return CRN{}, &Error{Field: "prefix", Value: clip(p[0] + ":" + p[1]), Reason: `want "crn:v1"`, anyCRN: true}
	}
	return CRN{CName: p[2], CType: p[3], ServiceName: p[4], Location: p[5], Scope: p[6],
		ServiceInstance: p[7], ResourceType: p[8], Resource: p[9]}, nil
}

// ParseKey parses a root key CRN of the form
//
//	crn:v1:bluemix:public:kms:<region>:a/<account>:<instance-guid>:key:<key-id>
//
// (hs-crypto in place of kms for Hyper Protect Crypto Services). It is
// strict: every segment must be present and well formed, hexadecimal must be
// lowercase, and surrounding white space is an error. Failures are
// *Error values matching ErrInvalid.
func ParseKey(s string) (Key, error) {
	if s == "" {
		return Key{}, &Error{Field: "crn", Reason: "empty; want crn:v1:bluemix:public:kms:<region>:a/<account>:<instance>:key:<key-id>"}
	}
	if len(s) > maxCRNLen {
		return Key{}, &Error{Field: "crn", Reason: fmt.Sprintf("%d bytes long, more than the %d a key CRN can have", len(s), maxCRNLen)}
	}
	parts := strings.Split(s, ":")
	if len(parts) != crnSegments {
		return Key{}, &Error{Field: "crn", Value: clip(s), Reason: fmt.Sprintf("has %d colon-separated segments, want %d (crn:v1:bluemix:public:<service>:<region>:a/<account>:<instance>:key:<key-id>)", len(parts), crnSegments)}
	}
	fixed := []struct{ field, want string }{
		{"prefix", "crn"}, {"version", "v1"}, {"cname", "bluemix"}, {"ctype", "public"},
	}
	for i, f := range fixed {
		if parts[i] != f.want {
			return Key{}, &Error{Field: f.field, Value: clip(parts[i]), Reason: fmt.Sprintf("want %q", f.want)}
		}
	}
	var c Key
	switch Service(parts[4]) {
	case KeyProtect, HPCS:
		c.Service = Service(parts[4])
	default:
		return Key{}, &Error{Field: "service-name", Value: clip(parts[4]), Reason: `want "kms" (Key Protect) or "hs-crypto" (Hyper Protect Crypto Services)`}
	}
	if err := checkRegion(parts[5]); err != nil {
		return Key{}, err
	}
	c.Region = parts[5]
	scope, ok := strings.CutPrefix(parts[6], "a/")
	if !ok {
		return Key{}, &Error{Field: "scope", Value: clip(parts[6]), Reason: "want a/<account ID>"}
	}
	if len(scope) != accountIDLen || !isLowerHex(scope) {
		return Key{}, &Error{Field: "scope", Value: clip(parts[6]), Reason: fmt.Sprintf("the account ID must be %d lowercase hexadecimal digits", accountIDLen)}
	}
	c.AccountID = scope
	if !isUUID(parts[7]) {
		return Key{}, &Error{Field: "service-instance", Value: clip(parts[7]), Reason: "want the instance GUID (8-4-4-4-12 lowercase hexadecimal digits)"}
	}
	c.InstanceID = parts[7]
	if parts[8] != "key" {
		return Key{}, &Error{Field: "resource-type", Value: clip(parts[8]), Reason: `want "key": this is not a key CRN`}
	}
	if !isUUID(parts[9]) {
		return Key{}, &Error{Field: "resource", Value: clip(parts[9]), Reason: "want the key ID (8-4-4-4-12 lowercase hexadecimal digits)"}
	}
	c.KeyID = parts[9]
	return c, nil
}

// checkRegion accepts names like us-south, eu-de, jp-osa: two or more
// lowercase letters or digits in hyphen-separated words, starting with a
// letter. It does not check the name against a list, so new regions work.
func checkRegion(r string) error {
	bad := func(reason string) error {
		return &Error{Field: "location", Value: clip(r), Reason: reason}
	}
	if r == "" {
		return bad("empty; want the region, e.g. us-south")
	}
	if len(r) > maxRegionLen {
		return bad(fmt.Sprintf("longer than %d characters", maxRegionLen))
	}
	words := strings.Split(r, "-")
	if len(words) < 2 {
		return bad("want a region such as us-south or eu-de, not a multi-region or data-center location")
	}
	for _, w := range words {
		if w == "" {
			return bad("empty word between hyphens")
		}
		for i := 0; i < len(w); i++ {
			ch := w[i]
			if !(ch >= 'a' && ch <= 'z' || ch >= '0' && ch <= '9') {
				return bad("only lowercase letters, digits and hyphens are allowed")
			}
		}
	}
	if r[0] < 'a' || r[0] > 'z' {
		return bad("must start with a letter")
	}
	return nil
}

func isLowerHex(s string) bool {
	for i := 0; i < len(s); i++ {
		ch := s[i]
		if !(ch >= '0' && ch <= '9' || ch >= 'a' && ch <= 'f') {
			return false
		}
	}
	return s != ""
}

// isUUID reports whether s is a lowercase 8-4-4-4-12 UUID.
func isUUID(s string) bool {
	if len(s) != 36 {
		return false
	}
	for i := 0; i < len(s); i++ {
		ch := s[i]
		switch i {
		case 8, 13, 18, 23:
			if ch != '-' {
				return false
			}
		default:
			if !(ch >= '0' && ch <= '9' || ch >= 'a' && ch <= 'f') {
				return false
			}
		}
	}
	return true
}

// clip shortens a value quoted in an error message.
func clip(s string) string {
	const max = 80
	if len(s) <= max {
		return s
	}
	return s[:max] + "..."
}
