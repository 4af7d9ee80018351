package e2e

import (
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/e2eimage/e2eimage/audit"
	"github.com/e2eimage/e2eimage/classic"
	"github.com/e2eimage/e2eimage/cos"
	"github.com/e2eimage/e2eimage/iam"
	"github.com/e2eimage/e2eimage/internal/secret"
	"github.com/e2eimage/e2eimage/kms"
)

// Endpoints overrides the base URLs of the IBM Cloud services, for private
// networks, other environments or a local simulator. An empty field keeps
// the public endpoint derived from the region or the key CRN. The JSON
// names are those examples/cloudsim prints, so its first output line can be
// read as Endpoints.
type Endpoints struct {
	// IAM is the IAM base URL (the token endpoint is IAM +
	// "/identity/token"). Default iam.DefaultURL.
	IAM string `json:"iam,omitempty"`
	// IAMIdentity and IAMPolicy are the IAM Identity and Policy Management
	// API base URLs. Default: IAM.
	IAMIdentity string `json:"iam_identity,omitempty"`
	IAMPolicy   string `json:"iam_policy,omitempty"`
	// KMS and HPCS are the key service base URLs (without /api/v2); the
	// one matching the root key CRN's service is used. Default: from the
	// CRN.
	KMS  string `json:"kms,omitempty"`
	HPCS string `json:"hpcs,omitempty"`
	// S3 is the COS endpoint. Default: from the region.
	S3 string `json:"s3,omitempty"`
	// SoftLayer is the classic REST endpoint, ending in /rest/v3.1.
	// Default classic.DefaultEndpoint.
	SoftLayer string `json:"softlayer,omitempty"`
	// ActivityTracker is the IBM Cloud Logs instance that Activity Tracker
	// routes events to (https://<instance>.api.<region>.logs.cloud.ibm.com).
	// No default: without it, the audit trail holds the classic event log
	// only.
	ActivityTracker string `json:"activity_tracker,omitempty"`
}

// Cloud says how to reach IBM Cloud and with which credentials, for
// Connect.
type Cloud struct {
	// APIKey is the IBM Cloud API key the clients authenticate with.
	// Required.
	APIKey *secret.String
	// RootKeyCRN is the Key Protect or HPCS root key. Without it, Connect
	// makes no key service or IAM client (the account id comes from it).
	RootKeyCRN string
	// Region is the COS region of the bucket. Default: the root key's.
	Region string
	// COSInstance is the COS instance's CRN or GUID, sent with API-key
	// requests (ibm-service-instance-id); optional for object operations.
	COSInstance string
	// Classic are the classic infrastructure credentials. Zero: the IBM
	// Cloud API key (user name "apikey").
	Classic classic.Credentials
	// Private uses the private endpoints of IAM, the key service, COS and
	// the classic API (from IBM Cloud's network).
	Private bool
	// HPCSPort selects an older port-based HPCS endpoint.
	HPCSPort int
	// Endpoints overrides URLs.
	Endpoints Endpoints
	// PollMin and PollMax bound the classic polling interval (default
	// classic's). A simulator with a fast clock wants milliseconds.
	PollMin, PollMax time.Duration
	// Logger receives the clients' debug logs; default: discard.
	Logger *slog.Logger
}

// Clients are the service clients a Plan needs, made by Connect from one
// API key.
type Clients struct {
	// Auth exchanges the API key for IAM tokens.
	Auth *iam.Authenticator
	// IAM and Keys are nil without Cloud.RootKeyCRN.
	IAM  *iam.Client
	Keys *kms.Client
	COS  *cos.Client
	// Classic is the classic infrastructure client.
	Classic *classic.Client
	// Audit reads the classic event log and, with
	// Endpoints.ActivityTracker, Activity Tracker events.
	Audit *audit.Reader
}

// Connect makes the clients for c. It makes no request; a wrong key or an
// unreachable endpoint shows on the first call (Preflight finds both).
func Connect(c Cloud) (*Clients, error) {
	if c.APIKey.Empty() {
		return nil, fmt.Errorf("%w: Cloud.APIKey is required", ErrPlan)
	}
	log := c.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	e := c.Endpoints
	iamURL := e.IAM
	if iamURL == "" {
		iamURL = iam.DefaultURL
		if c.Private {
			iamURL = iam.PrivateURL
		}
	}
	iamURL = strings.TrimSuffix(strings.TrimSuffix(iamURL, "/"), "/identity/token")
	auth, err := iam.NewAuthenticator(c.APIKey, iam.WithURL(iamURL))
	if err != nil {
		return nil, err
	}
	cl := &Clients{Auth: auth}

	region := c.Region
	if c.RootKeyCRN != "" {
		key, err := kms.ParseCRN(c.RootKeyCRN)
		if err != nil {
			return nil, err
		}
		if region == "" {
			region = key.Region
		}
		kopts := []kms.Option{kms.WithLogger(log)}
		switch {
		case key.Service == kms.KeyProtect && e.KMS != "":
			kopts = append(kopts, kms.WithURL(e.KMS))
		case key.Service == kms.HPCS && e.HPCS != "":
			kopts = append(kopts, kms.WithURL(e.HPCS))
		}
		if c.Private {
			kopts = append(kopts, kms.WithPrivateEndpoint())
		}
		if c.HPCSPort != 0 {
			kopts = append(kopts, kms.WithHPCSPort(c.HPCSPort))
		}
		if cl.Keys, err = kms.New(c.RootKeyCRN, auth, kopts...); err != nil {
			return nil, err
		}
		iopts := []iam.Option{iam.WithLogger(log), iam.WithIdentityURL(firstNonEmpty(e.IAMIdentity, iamURL)),
			iam.WithPolicyURL(firstNonEmpty(e.IAMPolicy, iamURL))}
		if cl.IAM, err = iam.NewClient(auth, key.AccountID, iopts...); err != nil {
			return nil, err
		}
	}
	if region == "" {
		return nil, fmt.Errorf("%w: Cloud.Region is required without a root key CRN", ErrPlan)
	}
	cc := cos.Config{
		Region: region, Endpoint: e.S3, APIKey: c.APIKey, ServiceInstanceID: c.COSInstance,
		IAMTokenURL: iamURL + "/identity/token", Logger: log,
	}
	if c.Private {
		cc.EndpointType = cos.Private
	}
	if cl.COS, err = cos.New(cc); err != nil {
		return nil, err
	}
	creds := c.Classic
	if creds.APIKey.Empty() {
		creds = classic.IBMCloudAPIKey(c.APIKey)
	}
	copts := []classic.Option{classic.WithLogger(log), classic.WithUserAgent("e2eimage")}
	switch {
	case e.SoftLayer != "":
		copts = append(copts, classic.WithEndpoint(e.SoftLayer))
	case c.Private:
		copts = append(copts, classic.WithPrivateEndpoint())
	}
	if c.PollMin > 0 || c.PollMax > 0 {
		if c.PollMin <= 0 || c.PollMax < c.PollMin {
			return nil, fmt.Errorf("%w: PollMin and PollMax must both be set, PollMin <= PollMax", ErrPlan)
		}
		copts = append(copts, classic.WithPollInterval(c.PollMin, c.PollMax))
	}
	if cl.Classic, err = classic.New(creds, copts...); err != nil {
		return nil, err
	}
	sources := []audit.Source{audit.NewEventLog(cl.Classic)}
	if e.ActivityTracker != "" {
		logs, err := audit.NewCloudLogs(e.ActivityTracker, auth, audit.WithLogger(log), audit.WithSecrets(c.APIKey, creds.APIKey))
		if err != nil {
			return nil, err
		}
		sources = append(sources, logs)
	}
	cl.Audit = audit.NewReader(sources)
	return cl, nil
}

// Close releases idle connections.
func (c *Clients) Close() {
	if c != nil && c.COS != nil {
		c.COS.CloseIdleConnections()
	}
}

func firstNonEmpty(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// errNoKeyClients is returned by Clients users that need a key service.
var errNoKeyClients = errors.New("e2e: no root key CRN was given, so there is no key service client")
