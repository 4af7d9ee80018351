// Package simcore holds the few types that the simulated IBM Cloud services
// share in-process: the simulation clock, the Activity Tracker event model and
// sink, the identity and authorization look-ups that the simulated backplane
// makes, and the small HTTP helpers their handlers have in common
// (RemoteHost, StatusRecorder). Each simulated service lives in its own
// package under internal/cloudsim and depends only on this one for its
// neighbours.
package simcore

import (
	"context"
	"sync"
	"time"
)

// Clock is the simulation's time source. It can run faster than real time so
// that imports and provisioning, which take minutes on IBM Cloud, take
// milliseconds in tests.
type Clock struct {
	mu    sync.Mutex
	base  time.Time // simulated time at realT
	realT time.Time
	speed float64
}

// NewClock returns a clock that starts at start and advances speed simulated
// seconds per real second. speed <= 0 means 1.
func NewClock(start time.Time, speed float64) *Clock {
	if speed <= 0 {
		speed = 1
	}
	return &Clock{base: start, realT: time.Now(), speed: speed}
}

// Now returns the simulated time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.base.Add(time.Duration(float64(time.Since(c.realT)) * c.speed))
}

// Speed returns how many simulated seconds pass per real second.
func (c *Clock) Speed() float64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.speed
}

// SetSpeed changes the speed from now on, keeping Now continuous.
func (c *Clock) SetSpeed(speed float64) {
	if speed <= 0 {
		speed = 1
	}
	now := c.Now()
	c.mu.Lock()
	c.base, c.realT, c.speed = now, time.Now(), speed
	c.mu.Unlock()
}

// Advance jumps simulated time forward by d.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.base = c.base.Add(d)
	c.mu.Unlock()
}

// Real converts a simulated duration to the real duration it takes.
func (c *Clock) Real(d time.Duration) time.Duration {
	return time.Duration(float64(d) / c.Speed())
}

// Sleep waits for simulated duration d or until ctx is done.
func (c *Clock) Sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(c.Real(d))
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// Event is one Activity Tracker event in the documented CADF-based model
// (../../../docs/CLOUD.md section 6.3). JSON names follow IBM's event reference.
type Event struct {
	Action        string         `json:"action"` // service.objectType.action, e.g. kms.secrets.wrap
	Outcome       string         `json:"outcome"`
	Severity      string         `json:"severity"`
	EventTime     time.Time      `json:"eventTime"`
	Initiator     Initiator      `json:"initiator"`
	Target        Target         `json:"target"`
	Reason        Reason         `json:"reason"`
	RequestData   map[string]any `json:"requestData,omitempty"`
	ResponseData  map[string]any `json:"responseData,omitempty"`
	LogSourceCRN  string         `json:"logSourceCRN"`
	CorrelationID string         `json:"correlationId,omitempty"`
	Message       string         `json:"message"`
}

// Outcomes and severities of the event model.
const (
	OutcomeSuccess  = "success"
	OutcomePending  = "pending"
	OutcomeFailure  = "failure"
	SeverityNormal  = "normal"
	SeverityWarning = "warning"
)

// Initiator is who acted.
type Initiator struct {
	ID         string     `json:"id"`
	Name       string     `json:"name"`
	TypeURI    string     `json:"typeURI"`
	Credential Credential `json:"credential"`
	Host       Host       `json:"host"`
}

// Credential says how the initiator authenticated.
type Credential struct {
	Type string `json:"type"` // "token", "apikey", ...
}

// Host is where the request came from.
type Host struct {
	Address string `json:"address"`
}

// Target is what was acted on.
type Target struct {
	ID              string `json:"id"` // a CRN
	Name            string `json:"name"`
	TypeURI         string `json:"typeURI"`
	ResourceGroupID string `json:"resourceGroupId,omitempty"`
}

// Reason carries the HTTP-like outcome code.
type Reason struct {
	ReasonCode       int    `json:"reasonCode"`
	ReasonType       string `json:"reasonType"`
	ReasonForFailure string `json:"reasonForFailure,omitempty"`
}

// EventSink receives events from every simulated service.
type EventSink interface {
	Record(Event)
}

// Principal is the identity behind an API key or a token.
type Principal struct {
	AccountID string
	IAMID     string // e.g. IBMid-... or iam-ServiceId-...
	Name      string
}

// Identity resolves API keys and bearer tokens issued by the simulated IAM.
type Identity interface {
	// LookupAPIKey returns the principal owning an API key.
	LookupAPIKey(apiKey string) (Principal, bool)
	// LookupToken validates an access token (signature and expiry) and
	// returns its principal. The token may carry a "Bearer " prefix.
	LookupToken(token string) (Principal, bool)
}

// Authorizer answers whether IAM policies allow something.
type Authorizer interface {
	// HasAuthorization reports whether an authorization (service-to-service)
	// policy lets sourceService in accountID reach targetService, optionally
	// scoped to targetInstance (a GUID; "" matches any scope).
	HasAuthorization(accountID, sourceService, targetService, targetInstance string) bool
	// HasAccess reports whether iamID holds a role on serviceName (and on
	// serviceInstance when non-empty).
	HasAccess(accountID, iamID, serviceName, serviceInstance string) bool
}
