package kms

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/e2eimage/e2eimage/crn"

	"github.com/e2eimage/e2eimage/internal/endpoint"
)

// HPCS port range for port-based endpoints (../docs/CLOUD.md §1.7: 8000 to
// 19999, shown on the instance's dashboard).
const (
	minHPCSPort = 8000
	maxHPCSPort = 19999
)

// ErrInsecureEndpoint is returned for an endpoint URL that is not https,
// unless it is plain http to a loopback address (a local simulator).
var ErrInsecureEndpoint = errors.New("kms: endpoint must use https (plain http is allowed only to a loopback host)")

// EndpointURL returns the base URL of the key service API for a key, without
// the /api/v2 suffix:
//
//   - Key Protect: https://<region>.kms.cloud.ibm.com, or
//     https://private.<region>.kms.cloud.ibm.com when private is set.
//   - HPCS with hpcsPort == 0 (instance-based endpoints, the current style):
//     https://<instance>.api.<region>.hs-crypto.appdomain.cloud, or
//     https://<instance>.api.private.<region>.hs-crypto.appdomain.cloud.
//   - HPCS with a port (older, port-based instances):
//     https://api.<region>.hs-crypto.cloud.ibm.com:<port>, or
//     https://api.private.<region>.hs-crypto.cloud.ibm.com:<port>.
//
// Source: ../docs/CLOUD.md §1.1 and §1.7. A port is refused for Key Protect.
func EndpointURL(c crn.Key, private bool, hpcsPort int) (string, error) {
	switch c.Service {
	case crn.KeyProtect:
		if hpcsPort != 0 {
			return "", fmt.Errorf("kms: an crn.HPCS port (%d) was given for a Key Protect key; Key Protect endpoints have no port", hpcsPort)
		}
		if private {
			return "https://private." + c.Region + ".kms.cloud.ibm.com", nil
		}
		return "https://" + c.Region + ".kms.cloud.ibm.com", nil
	case crn.HPCS:
		priv := ""
		if private {
			priv = "private."
		}
		if hpcsPort == 0 {
			return "https://" + c.InstanceID + ".api." + priv + c.Region + ".hs-crypto.appdomain.cloud", nil
		}
		if hpcsPort < minHPCSPort || hpcsPort > maxHPCSPort {
			return "", fmt.Errorf("kms: crn.HPCS port %d is outside %d-%d (see the instance's key management endpoint URL)", hpcsPort, minHPCSPort, maxHPCSPort)
		}
		return "https://api." + priv + c.Region + ".hs-crypto.cloud.ibm.com:" + strconv.Itoa(hpcsPort), nil
	}
	return "", fmt.Errorf("kms: unknown key service %q", c.Service)
}

// DedicatedEndpointURL returns the base URL of a Key Protect Dedicated
// instance (CRN service "kms"), without the /api/v2 suffix:
// https://<instance_ID>.api.<region>.kms.appdomain.cloud, IBM's documented
// form (key-protect docs: the migration guide from HPCS, setting up the CLI
// for a single-tenant instance, and the instance's endpoints.public value),
// or https://<instance_ID>.api.private.<region>.kms.appdomain.cloud when
// private is set. The private form is inferred: it follows the documented
// private form of HPCS's instance endpoints (.api.private.<region>.), which
// IBM's own Terraform modules also use for Key Protect Dedicated; the
// instance's endpoints.private value is authoritative (pass it with
// WithURL). Key Protect Dedicated is a Key Protect offering: an HPCS CRN is
// refused.
func DedicatedEndpointURL(c crn.Key, private bool) (string, error) {
	if c.Service != crn.KeyProtect {
		return "", fmt.Errorf("kms: Key Protect Dedicated keys have CRN service %q, not %q", crn.KeyProtect, c.Service)
	}
	if c.InstanceID == "" || c.Region == "" {
		return "", errors.New("kms: a Key Protect Dedicated endpoint needs the CRN's instance ID and region")
	}
	priv := ""
	if private {
		priv = "private."
	}
	return "https://" + c.InstanceID + ".api." + priv + c.Region + ".kms.appdomain.cloud", nil
}

// CheckURL validates a service base URL: https to any host, or http only to
// a loopback host (127.0.0.0/8, ::1 or localhost), with no user
// information, query or fragment. It returns the URL without a trailing
// slash. The iam package applies the same rule to IAM endpoints.
func CheckURL(raw string) (string, error) {
	u, err := endpoint.Check(raw)
	switch {
	case errors.Is(err, endpoint.ErrInsecure), errors.Is(err, endpoint.ErrScheme):
		return "", fmt.Errorf("%w: %w", ErrInsecureEndpoint, err)
	case err != nil:
		return "", fmt.Errorf("kms: endpoint: %w", err)
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return "", fmt.Errorf("kms: endpoint %q: must not have a query or fragment", raw)
	}
	return strings.TrimSuffix(u.String(), "/"), nil
}
