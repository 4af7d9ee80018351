package iam

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"time"

	"github.com/IBM/go-sdk-core/v5/core"
	"github.com/IBM/platform-services-go-sdk/iamidentityv1"
	"github.com/IBM/platform-services-go-sdk/iampolicymanagementv1"

	"github.com/e2eimage/e2eimage/internal/endpoint"
	"github.com/e2eimage/e2eimage/internal/httppolicy"
)

// IAM service names used in policies (../docs/CLOUD.md §3.3).
const (
	// ServiceBlockStorage is "Cloud Block Storage", the source of the
	// authorization that lets classic E2E-encrypted servers unwrap their DEK.
	// The classic docs name it only by display name; server-protect is the
	// name the VPC docs give it (../docs/CLOUD.md §3.3, §8).
	ServiceBlockStorage = "server-protect"
	// ServiceCOS is Cloud Object Storage.
	ServiceCOS = "cloud-object-storage"
	// ServiceKeyProtect is Key Protect.
	ServiceKeyProtect = "kms"
	// ServiceHPCS is Hyper Protect Crypto Services.
	ServiceHPCS = "hs-crypto"
)

// Role is an IAM role CRN.
type Role string

// Service roles (../docs/CLOUD.md §3.3).
const (
	RoleReader  Role = "crn:v1:bluemix:public:iam::::serviceRole:Reader"
	RoleWriter  Role = "crn:v1:bluemix:public:iam::::serviceRole:Writer"
	RoleManager Role = "crn:v1:bluemix:public:iam::::serviceRole:Manager"
)

// rank orders the generic service roles: each includes the ones below it.
func (r Role) rank() int {
	switch r {
	case RoleReader:
		return 1
	case RoleWriter:
		return 2
	case RoleManager:
		return 3
	}
	return 0
}

// Name is the role's short name ("Reader").
func (r Role) Name() string {
	s := string(r)
	for i := len(s) - 1; i >= 0; i-- {
		if s[i] == ':' {
			return s[i+1:]
		}
	}
	return s
}

// covers reports whether holding roles grants want: want itself, or a
// generic service role ranked above it.
func covers(roles []string, want Role) bool {
	for _, r := range roles {
		if Role(r) == want || want.rank() > 0 && Role(r).rank() >= want.rank() {
			return true
		}
	}
	return false
}

// Defaults of the platform API clients.
const (
	defaultMaxRetries    = 4                // like the SDKs' own default
	defaultMaxRetryWait  = 30 * time.Second // like the SDKs' own default
	apiKeyListPageSize   = 100              // IAM Identity's largest pagesize
	serviceIDListPageMax = 100
)

// Option configures an Authenticator (NewAuthenticator) or a Client
// (NewClient); each takes the options that concern it and ignores the
// others.
type Option func(*options)

type options struct {
	// Authenticator.
	url     string
	timeout time.Duration

	// Client.
	identityURL string
	policyURL   string
	log         *slog.Logger
	maxRetries  int
	maxWait     time.Duration

	// Both.
	httpClient *http.Client
}

// WithHTTPClient sets the HTTP client: for an Authenticator its Transport
// carries the token requests (the timeout is WithTokenTimeout's), for a
// Client it carries the IAM Identity and Policy Management calls. A
// transport that skips TLS verification is refused. Every client of this
// SDK has an option of this name.
func WithHTTPClient(hc *http.Client) Option { return func(o *options) { o.httpClient = hc } }

// WithIdentityURL sets the IAM Identity API base URL (default DefaultURL).
// An empty u keeps the default.
func WithIdentityURL(u string) Option {
	return func(o *options) {
		if u != "" {
			o.identityURL = u
		}
	}
}

// WithPolicyURL sets the IAM Policy Management API base URL (default
// DefaultURL). An empty u keeps the default.
func WithPolicyURL(u string) Option {
	return func(o *options) {
		if u != "" {
			o.policyURL = u
		}
	}
}

// WithLogger sets the logger (default: none). API keys and tokens are never
// logged.
func WithLogger(l *slog.Logger) Option { return func(o *options) { o.log = l } }

// WithRetries sets how often a failed IAM call (429, 5xx, connection error)
// is retried and the longest wait between tries. Default 4 retries, 30s.
// 0 retries disables retrying. The bound is per Client (go-sdk-core's
// EnableRetries), not process-wide. A create retried after a 5xx that IAM
// had in fact carried out can leave a duplicate: a duplicate policy is
// refused (409, then found); of duplicate service IDs the oldest is kept and
// the ones that appeared during the create are deleted (see
// EnsureServiceID).
func WithRetries(n int, maxWait time.Duration) Option {
	return func(o *options) { o.maxRetries, o.maxWait = n, maxWait }
}

// Client creates and finds the IAM objects the E2E flow needs in one
// account: service-to-service authorizations, the import service ID, its
// API key and its access policies. Every Ensure method is idempotent: it
// looks for the object first and creates it only when missing, and a 409
// from a concurrent creator counts as found.
type Client struct {
	accountID string
	auth      *Authenticator
	identity  *iamidentityv1.IamIdentityV1
	policy    *iampolicymanagementv1.IamPolicyManagementV1
	log       *slog.Logger
	hc        *http.Client // identity's and policy's
}

// NewClient returns a Client for accountID, authenticating with auth. It
// makes no request.
func NewClient(auth *Authenticator, accountID string, opts ...Option) (*Client, error) {
	if auth == nil {
		return nil, errors.New("iam: an authenticator is required")
	}
	if accountID == "" {
		return nil, errors.New("iam: an account ID is required")
	}
	o := options{identityURL: DefaultURL, policyURL: DefaultURL, maxRetries: defaultMaxRetries, maxWait: defaultMaxRetryWait}
	for _, opt := range opts {
		opt(&o)
	}
	if o.log == nil {
		o.log = slog.New(slog.DiscardHandler)
	}
	idURL, err := checkURL(o.identityURL)
	if err != nil {
		return nil, err
	}
	polURL, err := checkURL(o.policyURL)
	if err != nil {
		return nil, err
	}
	identity, err := iamidentityv1.NewIamIdentityV1(&iamidentityv1.IamIdentityV1Options{URL: idURL, Authenticator: auth})
	if err != nil {
		return nil, fmt.Errorf("iam: creating the IAM Identity client: %w", err)
	}
	policy, err := iampolicymanagementv1.NewIamPolicyManagementV1(&iampolicymanagementv1.IamPolicyManagementV1Options{URL: polURL, Authenticator: auth})
	if err != nil {
		return nil, fmt.Errorf("iam: creating the IAM Policy Management client: %w", err)
	}
	// One transport for both APIs (usually one host), so that
	// CloseIdleConnections reaches every connection.
	hc := o.httpClient
	if hc == nil {
		hc = &http.Client{Transport: endpoint.NewTransport(), Timeout: httppolicy.DefaultRequestTimeout}
	} else if err := endpoint.CheckClient(hc); err != nil {
		return nil, fmt.Errorf("iam: refusing to send tokens over this HTTP client: %w", err)
	}
	// No redirect carries a token elsewhere (a copy: the caller's client
	// is not changed).
	hc = httppolicy.Client(hc)
	for _, svc := range []*core.BaseService{identity.Service, policy.Service} {
		svc.SetHTTPClient(hc)
		if o.maxRetries > 0 {
			svc.EnableRetries(o.maxRetries, o.maxWait)
		}
	}
	return &Client{accountID: accountID, auth: auth, identity: identity, policy: policy, log: o.log, hc: hc}, nil
}

// CloseIdleConnections closes the keep-alive connections to the IAM
// Identity and Policy Management APIs that carry no request now. The
// client stays usable. The Authenticator's token connections are its own:
// see Authenticator.CloseIdleConnections.
func (c *Client) CloseIdleConnections() { c.hc.CloseIdleConnections() }

// AccountID returns the account the client manages.
func (c *Client) AccountID() string { return c.accountID }

// Result says what an Ensure call found or made.
type Result struct {
	// ID is the object's ID (policy ID, service ID, ...).
	ID string
	// Created is true when this call created the object, false when it
	// already existed.
	Created bool
}

// APIError is an IAM API call that failed with an HTTP status.
type APIError struct {
	Op     string // what was being done
	Status int    // HTTP status, 0 if no answer
	Err    error  // the SDK's error
}

// Error names the operation, the status and the SDK's message.
func (e *APIError) Error() string {
	if e.Status != 0 {
		return fmt.Sprintf("iam: %s: HTTP %d: %v", e.Op, e.Status, e.Err)
	}
	return fmt.Sprintf("iam: %s: %v", e.Op, e.Err)
}

// Unwrap returns the SDK's error.
func (e *APIError) Unwrap() error { return e.Err }

// ErrForbidden is matched by IAM calls refused with HTTP 403: the caller's
// identity lacks the Administrator/Editor role on IAM Identity or IAM
// Access Management.
var ErrForbidden = errors.New("iam: the credentials may not manage IAM objects in this account")

// Is lets an HTTP 403 APIError match ErrForbidden.
func (e *APIError) Is(target error) bool {
	return target == ErrForbidden && e.Status == http.StatusForbidden
}

func apiError(op string, resp *core.DetailedResponse, err error) error {
	e := &APIError{Op: op, Err: err}
	if resp != nil {
		e.Status = resp.StatusCode
	}
	return e
}

func statusOf(resp *core.DetailedResponse) int {
	if resp == nil {
		return 0
	}
	return resp.StatusCode
}

// pageToken extracts the pagetoken query parameter of an IAM Identity
// "next" link.
func pageToken(next *string) string {
	if next == nil || *next == "" {
		return ""
	}
	u, err := url.Parse(*next)
	if err != nil {
		return ""
	}
	return u.Query().Get("pagetoken")
}
