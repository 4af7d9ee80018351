// Package scrub removes what identifies an account or grants access from
// recorded IBM Cloud responses, so that they can be kept as test fixtures:
// account ids (the a/<hex> part of CRNs, accountId, bss, ims fields), user
// ids and names, e-mail addresses, IBMid principals, IP addresses, access
// and refresh tokens, API keys and passwords, and key material (payload,
// ciphertext, plaintext, iv, encryptedNonce).
//
// A Scrubber maps each value it replaces to a placeholder of the same shape
// and keeps the mapping, so that the same account id in a CRN and in an
// accountId field becomes the same placeholder, and a JSON body stays JSON
// with its keys in their original order. Placeholders come from ranges that
// identify no one: account ids 00000000000000000000000000000001 and up,
// numeric ids from 1000001, addresses 198.18.0.0/15 (RFC 2544) and
// 2001:db8::/32 (RFC 3849), e-mail addresses userN@example.com (RFC 2606).
// Loopback addresses are kept: they name no one (and show that a recording
// came from a local simulator).
//
// JSON is scrubbed by key and by value; a JSON document held in a string
// (Cloud Logs' user_data, the event log's metaData) is scrubbed as JSON
// too. Server-sent events are scrubbed line by line, and any other text
// (S3's XML) by value only.
//
// What this package does NOT do: it does not know every field IBM may
// add. Names of people in free text, resource names and GUIDs of
// instances and keys are kept; read a fixture before publishing it.
package scrub

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"unicode/utf8"
)

// ErrBinary is returned by Body for a body that is not UTF-8 text.
var ErrBinary = errors.New("scrub: the body is not text")

// Redacted replaces secrets that have no useful shape (API keys,
// passwords, opaque tokens).
const Redacted = "REDACTED"

// KeyMaterial replaces key material: base64 of "scrubbed", so that a
// reader that decodes the field still can.
const KeyMaterial = "c2NydWJiZWQ="

// Scrubber replaces sensitive values consistently. It is safe for
// concurrent use. The zero value is not usable; call New.
type Scrubber struct {
	mu      sync.Mutex
	secrets []string
	maps    map[kind]map[string]string
}

type kind int

const (
	kindAccountHex kind = iota
	kindAccountNum
	kindUserNum
	kindPrincipal
	kindIBMid
	kindEmail
	kindIPv4
	kindIPv6
)

// New returns a Scrubber that also replaces each of secrets (API keys,
// tokens known to the caller) wherever it appears, by Redacted. Empty
// strings are ignored.
func New(secrets ...string) *Scrubber {
	s := &Scrubber{maps: map[kind]map[string]string{}}
	for _, v := range secrets {
		if v != "" {
			s.secrets = append(s.secrets, v)
		}
	}
	return s
}

// AddSecret makes the Scrubber replace secret too, from now on (a token
// learnt after the Scrubber was made). An empty string is ignored.
func (s *Scrubber) AddSecret(secret string) {
	if secret == "" {
		return
	}
	s.mu.Lock()
	s.secrets = append(s.secrets, secret)
	s.mu.Unlock()
}

// placeholder returns the placeholder of v in kind k, making the next one
// if v is new.
func (s *Scrubber) placeholder(k kind, v string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	m := s.maps[k]
	if m == nil {
		m = map[string]string{}
		s.maps[k] = m
	}
	if p, ok := m[v]; ok {
		return p
	}
	n := len(m) + 1
	var p string
	switch k {
	case kindAccountHex:
		p = fmt.Sprintf("%032x", n)
	case kindAccountNum:
		p = strconv.Itoa(1_000_000 + n)
	case kindUserNum:
		p = strconv.Itoa(2_000_000 + n)
	case kindPrincipal:
		p = fmt.Sprintf("principal-%d", n)
	case kindIBMid:
		p = fmt.Sprintf("IBMid-%010d", n)
	case kindEmail:
		p = fmt.Sprintf("user%d@example.com", n)
	case kindIPv4:
		// 198.18.0.0/15 holds 131072 addresses.
		ip := net.IPv4(198, 18, 0, 0).To4()
		off := n % (1 << 17)
		ip[1] += byte(off >> 16)
		ip[2] = byte(off >> 8)
		ip[3] = byte(off)
		p = ip.String()
	case kindIPv6:
		p = fmt.Sprintf("2001:db8::%x", n)
	}
	m[v] = p
	return p
}

var (
	jwtRE     = regexp.MustCompile(`eyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*`)
	emailRE   = regexp.MustCompile(`[A-Za-z0-9._%+\-]+@[A-Za-z0-9.\-]+\.[A-Za-z]{2,}`)
	accountRE = regexp.MustCompile(`\ba/([0-9a-fA-F]{32})\b`)
	ibmidRE   = regexp.MustCompile(`\bIBMid-[0-9A-Za-z]+`)
	hex32RE   = regexp.MustCompile(`^[0-9a-fA-F]{32}$`)
	digitsRE  = regexp.MustCompile(`^[0-9]+$`)
	// ipRunRE finds the runs of characters an IP address (with a port)
	// is made of; each run is then parsed.
	ipRunRE = regexp.MustCompile(`[0-9A-Za-z:.\-]+`)
)

// Text replaces, in free text, the caller's secrets, JWTs, e-mail
// addresses, the account part of CRNs (a/<32 hex>), IBMid principals and
// IP addresses other than loopback.
func (s *Scrubber) Text(t string) string {
	s.mu.Lock()
	secrets := s.secrets
	s.mu.Unlock()
	for _, sec := range secrets {
		t = strings.ReplaceAll(t, sec, Redacted)
	}
	t = jwtRE.ReplaceAllStringFunc(t, scrubJWT)
	t = emailRE.ReplaceAllStringFunc(t, func(m string) string { return s.placeholder(kindEmail, strings.ToLower(m)) })
	t = accountRE.ReplaceAllStringFunc(t, func(m string) string {
		return "a/" + s.placeholder(kindAccountHex, strings.ToLower(m[2:]))
	})
	t = ibmidRE.ReplaceAllStringFunc(t, func(m string) string { return s.placeholder(kindIBMid, m) })
	return ipRunRE.ReplaceAllStringFunc(t, s.ipRun)
}

// ipRun replaces a run that is an IP address, an address with a port, or
// either followed by full stops (the end of a sentence).
func (s *Scrubber) ipRun(run string) string {
	core := strings.TrimRight(run, ".")
	tail := run[len(core):]
	if r, ok := s.ip(core); ok {
		return r + tail
	}
	if host, port, err := net.SplitHostPort(core); err == nil {
		if r, ok := s.ip(host); ok {
			return r + ":" + port + tail
		}
	}
	return run
}

func (s *Scrubber) ip(v string) (string, bool) {
	// At least one dot or two colons: "1" or "a:b" are not addresses.
	if !strings.Contains(v, ".") && strings.Count(v, ":") < 2 {
		return "", false
	}
	ip := net.ParseIP(v)
	if ip == nil || ip.IsLoopback() || ip.IsUnspecified() {
		return "", false
	}
	if ip.To4() != nil && !strings.Contains(v, ":") {
		return s.placeholder(kindIPv4, ip.String()), true
	}
	return s.placeholder(kindIPv6, ip.String()), true
}

// scrubJWT replaces a JWT by an unsigned one ("alg": "none") whose claims
// are only its iat and exp, so that a reader of the token's lifetime still
// works; a token whose claims do not decode becomes Redacted.
func scrubJWT(tok string) string {
	parts := strings.Split(tok, ".")
	raw, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return Redacted
	}
	var claims map[string]json.RawMessage
	if json.Unmarshal(raw, &claims) != nil {
		return Redacted
	}
	keep := map[string]json.RawMessage{"scrubbed": json.RawMessage("true")}
	for _, k := range []string{"iat", "exp"} {
		if v, ok := claims[k]; ok {
			if _, err := strconv.ParseFloat(string(v), 64); err == nil {
				keep[k] = v
			}
		}
	}
	body, _ := json.Marshal(keep) // map keys sorted: deterministic
	enc := base64.RawURLEncoding
	return enc.EncodeToString([]byte(`{"alg":"none","typ":"JWT"}`)) + "." + enc.EncodeToString(body) + "." +
		enc.EncodeToString([]byte("scrubbed"))
}

// What a JSON key says about its value, by the key's lower-case letters
// and digits.
type keyRule int

const (
	ruleNone keyRule = iota
	ruleToken
	ruleSecret
	ruleKeyMaterial
	ruleAccount
	ruleUser
	rulePrincipal
)

var keyRules = map[string]keyRule{
	"accesstoken": ruleToken, "refreshtoken": ruleToken, "delegatedrefreshtoken": ruleToken,
	"idtoken": ruleToken, "token": ruleToken, "authorization": ruleToken, "iamtoken": ruleToken,

	"apikey": ruleSecret, "ibmapikey": ruleSecret, "password": ruleSecret, "secret": ruleSecret,
	"secretaccesskey": ruleSecret, "authenticationkey": ruleSecret, "privatekey": ruleSecret,
	"passphrase": ruleSecret, "hmackey": ruleSecret,

	"payload": ruleKeyMaterial, "ciphertext": ruleKeyMaterial, "plaintext": ruleKeyMaterial,
	"iv": ruleKeyMaterial, "encryptednonce": ruleKeyMaterial, "wrappeddek": ruleKeyMaterial,
	"keymaterial": ruleKeyMaterial, "encryptedkey": ruleKeyMaterial, "aad": ruleKeyMaterial,

	"accountid": ruleAccount, "account": ruleAccount, "bss": ruleAccount, "bssaccount": ruleAccount,
	"ims": ruleAccount, "imsaccount": ruleAccount, "owneraccount": ruleAccount, "brandaccountid": ruleAccount,

	"userid": ruleUser, "imsuserid": ruleUser, "ownerid": ruleUser,

	"username": rulePrincipal, "openidconnectusername": rulePrincipal, "email": rulePrincipal,
	"firstname": rulePrincipal, "lastname": rulePrincipal, "iamid": rulePrincipal, "sub": rulePrincipal,
	"createdby": rulePrincipal, "updatedby": rulePrincipal, "deletedby": rulePrincipal,
	"rotatedby": rulePrincipal, "restoredby": rulePrincipal, "lastupdatedby": rulePrincipal,
	"realmid": rulePrincipal,
}

func ruleOf(key string) keyRule {
	var b strings.Builder
	for _, r := range strings.ToLower(key) {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' {
			b.WriteRune(r)
		}
	}
	return keyRules[b.String()]
}

// JSON scrubs a JSON document, keeping its key order, and returns it
// compact. A document that does not parse is an error.
func (s *Scrubber) JSON(doc []byte) ([]byte, error) {
	dec := json.NewDecoder(bytes.NewReader(doc))
	dec.UseNumber()
	var out bytes.Buffer
	if err := s.value(dec, ruleNone, &out); err != nil {
		return nil, fmt.Errorf("scrub: %w", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("scrub: data after the JSON document")
	}
	return out.Bytes(), nil
}

func (s *Scrubber) value(dec *json.Decoder, rule keyRule, out *bytes.Buffer) error {
	tok, err := dec.Token()
	if err != nil {
		return err
	}
	switch t := tok.(type) {
	case json.Delim:
		switch t {
		case '{':
			out.WriteByte('{')
			for first := true; dec.More(); first = false {
				kt, err := dec.Token()
				if err != nil {
					return err
				}
				key, ok := kt.(string)
				if !ok {
					return errors.New("object key is not a string")
				}
				if !first {
					out.WriteByte(',')
				}
				writeString(out, key)
				out.WriteByte(':')
				if err := s.value(dec, ruleOf(key), out); err != nil {
					return err
				}
			}
			out.WriteByte('}')
		case '[':
			out.WriteByte('[')
			for first := true; dec.More(); first = false {
				if !first {
					out.WriteByte(',')
				}
				// An array under a key holds values of that key's kind.
				if err := s.value(dec, rule, out); err != nil {
					return err
				}
			}
			out.WriteByte(']')
		default:
			return fmt.Errorf("unexpected %v", t)
		}
		_, err := dec.Token() // the closing delimiter
		return err
	case string:
		writeString(out, s.stringValue(rule, t))
	case json.Number:
		out.WriteString(s.numberValue(rule, t))
	case bool:
		out.WriteString(strconv.FormatBool(t))
	case nil:
		out.WriteString("null")
	}
	return nil
}

func (s *Scrubber) stringValue(rule keyRule, v string) string {
	if v == "" {
		return v
	}
	switch rule {
	case ruleToken:
		if jwtRE.FindString(v) == v {
			return scrubJWT(v)
		}
		if v == "not_supported" { // IAM's refresh_token for API keys
			return v
		}
		return Redacted
	case ruleSecret:
		return Redacted
	case ruleKeyMaterial:
		return KeyMaterial
	case ruleAccount:
		switch {
		case hex32RE.MatchString(v):
			return s.placeholder(kindAccountHex, strings.ToLower(v))
		case digitsRE.MatchString(v):
			return s.placeholder(kindAccountNum, v)
		}
	case ruleUser:
		if digitsRE.MatchString(v) {
			return s.placeholder(kindUserNum, v)
		}
		return s.placeholder(kindPrincipal, v)
	case rulePrincipal:
		if v == "SYSTEM" { // the event log's platform records
			return v
		}
		if t := s.Text(v); t != v {
			return t
		}
		return s.placeholder(kindPrincipal, v)
	}
	// A JSON document in a string is scrubbed as JSON.
	if tv := strings.TrimSpace(v); len(tv) > 1 && (tv[0] == '{' || tv[0] == '[') {
		if b, err := s.JSON([]byte(tv)); err == nil {
			return string(b)
		}
	}
	return s.Text(v)
}

func (s *Scrubber) numberValue(rule keyRule, n json.Number) string {
	switch rule {
	case ruleAccount:
		return s.placeholder(kindAccountNum, n.String())
	case ruleUser:
		return s.placeholder(kindUserNum, n.String())
	}
	return n.String()
}

// writeString writes v as a JSON string without HTML escaping, as the
// services send it.
func writeString(out *bytes.Buffer, v string) {
	enc := json.NewEncoder(out)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v)           // a string always encodes
	out.Truncate(out.Len() - 1) // Encode's newline
}

// Body scrubs a response body by its content type: JSON (also when the
// type does not say so but the body parses), server-sent events, or text.
// A body that is not UTF-8 gives ErrBinary.
func (s *Scrubber) Body(contentType string, b []byte) ([]byte, error) {
	if !utf8.Valid(b) {
		return nil, ErrBinary
	}
	ct := strings.ToLower(contentType)
	if strings.Contains(ct, "event-stream") {
		return s.events(b), nil
	}
	if tb := bytes.TrimSpace(b); len(tb) > 0 && (tb[0] == '{' || tb[0] == '[') {
		if out, err := s.JSON(tb); err == nil {
			return out, nil
		}
	}
	return []byte(s.Text(string(b))), nil
}

// events scrubs a server-sent event stream: the JSON of data lines as
// JSON, every other line as text.
func (s *Scrubber) events(b []byte) []byte {
	lines := strings.SplitAfter(string(b), "\n")
	var out strings.Builder
	for _, l := range lines {
		body := strings.TrimRight(l, "\r\n")
		eol := l[len(body):]
		if rest, ok := strings.CutPrefix(body, "data:"); ok {
			if j, err := s.JSON([]byte(strings.TrimSpace(rest))); err == nil {
				out.WriteString("data: ")
				out.Write(j)
				out.WriteString(eol)
				continue
			}
		}
		out.WriteString(s.Text(body))
		out.WriteString(eol)
	}
	return []byte(out.String())
}
