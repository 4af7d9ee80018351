package e2e

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
)

// ErrUnreachable is matched (errors.Is) by an *UnreachableError.
var ErrUnreachable = errors.New("e2e: a service cannot be reached")

// UnreachableError says that a service could not be reached at all: its
// name did not resolve, the connection was refused or timed out, or TLS
// failed. It is a cause of its own, distinct from "not found" or "not
// authorized" (the service answered then), and the fix is the network or
// the endpoint, not the account: Run reports it once, not once for each
// preflight check that met it.
type UnreachableError struct {
	// Service names the service (e.g. "IAM", "COS"), or what was being
	// done when the host says nothing.
	Service string
	// Host is the host (and port) that could not be reached.
	Host string
	// Err is the network error.
	Err error
}

func (e *UnreachableError) Error() string {
	return fmt.Sprintf("e2e: cannot reach %s at %s: %v", e.Service, e.Host, e.Err)
}

// Unwrap returns ErrUnreachable and the network error.
func (e *UnreachableError) Unwrap() []error { return []error{ErrUnreachable, e.Err} }

// unreachable returns err as an *UnreachableError when its cause is that a
// host could not be reached (see UnreachableError), or nil. what names the
// step or check, for a host that names no known service. It reads the
// standard library's error types, also through the original error of
// errors that keep one without Unwrap (the COS SDK's awserr.Error).
func unreachable(err error, what string) *UnreachableError {
	if err == nil {
		return nil
	}
	var ue *UnreachableError
	if errors.As(err, &ue) {
		return ue
	}
	host, cause := networkCause(err)
	if cause == nil {
		if o, ok := err.(interface{ OrigErr() error }); ok && o.OrigErr() != nil {
			return unreachable(o.OrigErr(), what)
		}
		if u := errors.Unwrap(err); u != nil {
			return unreachable(u, what)
		}
		return nil
	}
	return &UnreachableError{Service: serviceOf(host, what), Host: host, Err: cause}
}

// networkCause finds the network failure in err, and the host from the
// request's URL (or the dial address, or the name looked up).
func networkCause(err error) (host string, cause error) {
	var uerr *url.Error
	if errors.As(err, &uerr) {
		if u, perr := url.Parse(uerr.URL); perr == nil {
			host = u.Host
		}
	}
	var dns *net.DNSError
	var op *net.OpError
	var unknownCA x509.UnknownAuthorityError
	var badHost x509.HostnameError
	var invalid x509.CertificateInvalidError
	var verify *tls.CertificateVerificationError
	var record tls.RecordHeaderError
	switch {
	case errors.As(err, &dns):
		if host == "" {
			host = dns.Name
		}
		return host, dns
	case errors.As(err, &op) && op.Op == "dial":
		if host == "" && op.Addr != nil {
			host = op.Addr.String()
		}
		return host, op
	case errors.As(err, &unknownCA), errors.As(err, &badHost), errors.As(err, &invalid),
		errors.As(err, &verify), errors.As(err, &record):
		return host, err
	case uerr != nil && uerr.Timeout():
		return host, uerr.Err
	}
	return "", nil
}

// serviceOf names the IBM Cloud service a host belongs to, from IBM's
// documented endpoint names (iam.cloud.ibm.com, <region>.kms.cloud.ibm.com,
// api.<region>.hs-crypto.cloud.ibm.com, s3.<region>.cloud-object-storage.appdomain.cloud,
// api.softlayer.com / api.service.softlayer.com, <instance>.api.<region>.logs.cloud.ibm.com);
// "the service of <what>" for any other host (a private or local endpoint).
func serviceOf(host, what string) string {
	h := strings.ToLower(host)
	for _, s := range []struct{ part, name string }{
		{"iam.", "IAM"}, {".kms.", "Key Protect"}, {"hs-crypto", "Hyper Protect Crypto Services"},
		{"cloud-object-storage", "Cloud Object Storage"}, {"softlayer", "the classic infrastructure API"},
		{".logs.", "IBM Cloud Logs"},
	} {
		if strings.Contains(h, s.part) {
			return s.name
		}
	}
	return "the service of " + what
}
