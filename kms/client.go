package kms

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"

	"github.com/e2eimage/e2eimage/crn"

	kp "github.com/IBM/keyprotect-go-client"

	"github.com/e2eimage/e2eimage/internal/endpoint"
	"github.com/e2eimage/e2eimage/internal/httppolicy"
	"github.com/e2eimage/e2eimage/secret"
)

// TokenSource supplies IAM access tokens. *iam.Authenticator implements it.
type TokenSource interface {
	// AccessToken returns a valid IAM access token, without the "Bearer "
	// prefix. An error that matches ErrUnauthorized, or that has a
	// CredentialsRefused() bool method returning true (as iam's errors do),
	// means the credentials were refused and makes the call fail with
	// ErrUnauthorized; other errors (IAM unreachable, ...) are reported as
	// they are.
	AccessToken(ctx context.Context) (*secret.String, error)
}

// tokenInvalidator is implemented by token sources that can drop a cached
// token the service refused (it may have been revoked or expired early).
type tokenInvalidator interface {
	InvalidateToken()
}

// Option configures a Client.
type Option func(*options)

type options struct {
	url       string
	private   bool
	dedicated bool
	hpcsPort  int
	keyRing   string
	retry     RetryPolicy
	log       *slog.Logger
	transport http.RoundTripper
}

// WithURL sets the key service base URL (without /api/v2), overriding the
// endpoint derived from the CRN. It must be https, or http to a loopback
// host. An empty url keeps the endpoint derived from the CRN.
func WithURL(url string) Option {
	return func(o *options) {
		if url != "" {
			o.url = url
		}
	}
}

// WithPrivateEndpoint selects the private (IBM Cloud network) endpoint.
// Default: the public endpoint.
func WithPrivateEndpoint() Option { return func(o *options) { o.private = true } }

// WithDedicated selects the endpoint of a Key Protect Dedicated instance
// (single-tenant Key Protect, the documented migration target of Hyper
// Protect Crypto Services), https://<instance_ID>.api.<region>.kms.appdomain.cloud
// or, with WithPrivateEndpoint, the .api.private. form (see
// DedicatedEndpointURL). Its keys keep the CRN service "kms", so the CRN
// alone cannot tell a Dedicated instance from a multi-tenant one: the
// signal IBM documents is the instance's endpoint, shown as endpoints.public
// in "ibmcloud resource service-instance <name> -o json" and on the
// instance's page. Pass that endpoint with WithURL, or use this option.
func WithDedicated() Option { return func(o *options) { o.dedicated = true } }

// WithHPCSPort selects the port-based HPCS endpoint of older instances,
// https://api.<region>.hs-crypto.cloud.ibm.com:<port>. Default: the
// instance-based endpoint.
func WithHPCSPort(port int) Option { return func(o *options) { o.hpcsPort = port } }

// WithKeyRing sends the key ring ID with each request (optional; it speeds
// up look-ups for keys outside the default ring).
func WithKeyRing(id string) Option { return func(o *options) { o.keyRing = id } }

// WithRetryPolicy sets the retry budget of each call. Default: RetryPolicy{}
// (5 attempts, backoff 1s to 30s).
func WithRetryPolicy(p RetryPolicy) Option { return func(o *options) { o.retry = p } }

// WithLogger sets the logger. Default: none. Nothing logged includes tokens,
// API keys, DEKs or request bodies.
func WithLogger(l *slog.Logger) Option { return func(o *options) { o.log = l } }

// WithHTTPClient sets the HTTP client whose Transport carries the key
// service calls (for a proxy or extra CA certificates); timeouts come from
// the context and the retry policy. A transport that skips TLS verification
// is refused. Default: a transport with TLS 1.2 or later and the system
// roots. Every client of this SDK has an option of this name.
func WithHTTPClient(hc *http.Client) Option {
	return func(o *options) {
		if hc != nil {
			o.transport = hc.Transport
		}
	}
}

// Client is a KeyService over keyprotect-go-client for one root key in Key
// Protect or Hyper Protect Crypto Services (the service is the one named in
// the CRN). It is safe for concurrent use.
type Client struct {
	crn      crn.Key
	endpoint string
	kp       *kp.Client
	tokens   TokenSource
	log      *slog.Logger
	// transport is the one given by WithTransport or the client's own,
	// for CloseIdleConnections.
	transport http.RoundTripper
}

var _ KeyService = (*Client)(nil)

// New returns a Client for the root key rootKeyCRN, authenticating with
// tokens. It makes no request; Check verifies the key.
func New(rootKeyCRN string, tokens TokenSource, opts ...Option) (*Client, error) {
	crn, err := crn.ParseKey(rootKeyCRN)
	if err != nil {
		return nil, err
	}
	if tokens == nil {
		return nil, errors.New("kms: a token source is required")
	}
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	base := o.url
	switch {
	case base != "":
	case o.dedicated:
		if o.hpcsPort != 0 {
			return nil, errors.New("kms: WithDedicated and WithHPCSPort do not go together")
		}
		if base, err = DedicatedEndpointURL(crn, o.private); err != nil {
			return nil, err
		}
	default:
		if base, err = EndpointURL(crn, o.private, o.hpcsPort); err != nil {
			return nil, err
		}
	}
	if base, err = CheckURL(base); err != nil {
		return nil, err
	}
	if o.log == nil {
		o.log = slog.New(slog.DiscardHandler)
	}
	rt := o.transport
	if rt == nil {
		rt = endpoint.NewTransport()
	} else if err := endpoint.CheckTransport(rt); err != nil {
		return nil, fmt.Errorf("kms: refusing to send keys over this transport: %w", err)
	}
	// No redirect carries a token or a key elsewhere.
	rtr := &retryTransport{base: httppolicy.Wrap(rt), policy: o.retry.withDefaults(), log: o.log, sleep: sleepCtx}
	cfg := kp.ClientConfig{
		BaseURL:    base,
		InstanceID: crn.InstanceID,
		KeyRing:    o.keyRing,
		Verbose:    kp.VerboseNone, // the SDK's dumps could show bodies holding DEKs
	}
	quiet := kp.NewLogger(func(...interface{}) {})
	c, err := kp.NewWithLogger(cfg, rtr, quiet)
	if err != nil {
		return nil, fmt.Errorf("kms: creating the key service client: %w", err)
	}
	// Per-attempt timeouts are the transport's; the whole call is bounded by
	// the caller's context and the retry budget.
	c.HttpClient.Timeout = 0
	c.HttpClient.CheckRedirect = httppolicy.CheckRedirect
	return &Client{crn: crn, endpoint: base, kp: c, tokens: tokens, log: o.log, transport: rt}, nil
}

// CloseIdleConnections closes the keep-alive connections of the client's
// transport that carry no request now (its own, or the one given with
// WithTransport if that has a CloseIdleConnections method). The client
// stays usable: later calls open new connections.
func (c *Client) CloseIdleConnections() {
	if ci, ok := c.transport.(interface{ CloseIdleConnections() }); ok {
		ci.CloseIdleConnections()
	}
}

// CRN returns the root key's parsed CRN.
func (c *Client) CRN() crn.Key { return c.crn }

// Endpoint returns the base URL the client talks to.
func (c *Client) Endpoint() string { return c.endpoint }

// call runs one SDK operation with a fresh token and the retry budget, and
// classifies its error. If the service answers 401 and the token source can
// drop its cached token, it tries once more with a new token.
func (c *Client) call(ctx context.Context, op string, fn func(ctx context.Context, st *callState) error) (*callState, error) {
	st, err := c.callOnce(ctx, op, fn)
	var ke *Error
	if inv, ok := c.tokens.(tokenInvalidator); ok && errors.As(err, &ke) && ke.Status == http.StatusUnauthorized {
		c.log.LogAttrs(ctx, slog.LevelDebug, "kms: token refused, fetching a new one", slog.String("op", op))
		inv.InvalidateToken()
		st, err = c.callOnce(ctx, op, fn)
	}
	return st, err
}

func (c *Client) callOnce(ctx context.Context, op string, fn func(ctx context.Context, st *callState) error) (*callState, error) {
	if err := ctx.Err(); err != nil {
		return nil, &Error{Op: op, Key: c.crn.String(), Err: err}
	}
	tok, err := c.tokens.AccessToken(ctx)
	if err != nil {
		e := &Error{Op: op, Key: c.crn.String(), State: StateUnknown, Err: fmt.Errorf("getting an IAM token: %w", err)}
		if errors.Is(err, ErrUnauthorized) || credentialsRefused(err) { // the token source says the credentials were refused
			e.Kind = ErrUnauthorized
		}
		return nil, e
	}
	cctx, st := newCall(ctx)
	defer st.done()
	cctx = kp.NewContextWithAuth(cctx, "Bearer "+tok.Reveal())
	c.log.LogAttrs(ctx, slog.LevelDebug, "kms: call", slog.String("op", op), slog.String("key", c.crn.KeyID))
	err = runGuarded(cctx, st, fn)
	attempts, exhausted, _ := st.result()
	if err == nil {
		return st, nil
	}
	var e *Error
	switch {
	case exhausted != nil:
		e = c.exhaustedError(op, exhausted)
	case ctx.Err() != nil:
		// The caller's context ended the call (kp.URLError does not unwrap,
		// so report the context's error itself).
		e = &Error{Op: op, Key: c.crn.String(), Err: ctx.Err()}
	default:
		e = classify(op, c.crn, err)
	}
	e.Attempts = attempts
	e.Endpoint = c.endpoint
	c.log.LogAttrs(ctx, slog.LevelDebug, "kms: call failed", slog.String("op", op),
		slog.Int("status", e.Status), slog.String("reason", e.Reason), slog.Int("attempts", attempts))
	return st, e
}

// runGuarded runs fn, turning a panic into an error: keyprotect-go-client
// indexes the first element of a key list without checking its length
// (../docs/CLOUD.md §2.2), so a malformed 200 answer would otherwise crash the
// caller's program.
func runGuarded(ctx context.Context, st *callState, fn func(context.Context, *callState) error) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("the key service client failed on an unexpected answer: %v", r)
		}
	}()
	return fn(ctx, st)
}

// exhaustedError reports the answer on which the retry budget ran out. The
// SDK never saw it as an error (its context was cancelled to stop it), so
// the cause is rebuilt as the *kp.Error it would have returned.
func (c *Client) exhaustedError(op string, a *lastAnswer) *Error {
	e := &Error{Op: op, Key: c.crn.String(), State: StateUnknown}
	if a.err != nil {
		e.Kind = ErrUnavailable
		// As net/http reports it: *url.Error over the transport's error
		// (a *net.OpError, *net.DNSError, ...), so callers can tell an
		// unreachable service from a refusal.
		method := a.method
		if method == "" {
			method = http.MethodGet
		}
		e.Err = &url.Error{Op: method[:1] + strings.ToLower(method[1:]), URL: a.url, Err: a.err}
		return e
	}
	msg, reason := parseErrorBody(a.body)
	if msg == "" {
		msg = http.StatusText(a.status)
	}
	e.Status, e.Reason = a.status, reason
	e.Kind = kindOf(op, a.status, reason)
	// Clone: the call's buffers are cleared when it ends.
	e.Err = &kp.Error{URL: a.url, StatusCode: a.status, Message: msg, BodyContent: bytes.Clone(a.body)}
	return e
}

// Describe returns the root key's metadata.
func (c *Client) Describe(ctx context.Context) (*KeyInfo, error) {
	var key *kp.Key
	_, err := c.call(ctx, "describe", func(ctx context.Context, _ *callState) error {
		var err error
		key, err = c.kp.GetKeyMetadata(ctx, c.crn.KeyID)
		return err
	})
	if err != nil {
		return nil, err
	}
	info := &KeyInfo{
		CRN:       c.crn,
		Name:      key.Name,
		Type:      RootKey,
		State:     KeyState(key.State),
		Deleted:   key.Deleted != nil && *key.Deleted,
		KeyRingID: key.KeyRingID,
	}
	if key.Extractable {
		info.Type = StandardKey
	}
	if key.KeyVersion != nil {
		info.KeyVersion = key.KeyVersion.ID
	}
	if key.CreationDate != nil {
		info.Created = *key.CreationDate
	}
	if key.LastRotateDate != nil {
		info.Rotated = *key.LastRotateDate
	}
	if key.CRN != "" {
		got, err := crn.ParseKey(key.CRN)
		if err != nil {
			return nil, &Error{Op: "describe", Key: c.crn.String(), Err: fmt.Errorf("the key service returned an unreadable key crn.Key: %w", err)}
		}
		if got != c.crn {
			return nil, &Error{Op: "describe", Key: c.crn.String(), Kind: ErrWrongInstance,
				Err: fmt.Errorf("the key service returned key %s", got)}
		}
		info.CRN = got
	}
	return info, nil
}

// Check describes the key and verifies that it can wrap: it exists, is a
// root key, is Active and is not deleted. Errors match ErrKeyNotFound,
// ErrNotRootKey, ErrKeyNotActive, ErrKeyDeleted, ErrUnauthorized or
// ErrWrongInstance.
func (c *Client) Check(ctx context.Context) (*KeyInfo, error) {
	info, err := c.Describe(ctx)
	if err != nil {
		return nil, err
	}
	if err := info.Usable(); err != nil {
		return info, err
	}
	return info, nil
}

// Wrap encrypts dek with the root key. dek stays the caller's.
func (c *Client) Wrap(ctx context.Context, dek *secret.DEK) (WrappedDEK, error) {
	if n := dek.Len(); n != secret.DEK256 && n != secret.DEK512 {
		return WrappedDEK{}, &Error{Op: "wrap", Key: c.crn.String(), Err: fmt.Errorf("%w (got %d bytes)", secret.ErrDEKSize, n)}
	}
	b64 := make([]byte, base64.StdEncoding.EncodedLen(dek.Len()))
	base64.StdEncoding.Encode(b64, dek.Bytes())
	defer clear(b64)
	var res *kp.KeyActionResponse
	_, err := c.call(ctx, "wrap", func(ctx context.Context, _ *callState) error {
		var err error
		res, err = c.kp.WrapV2(ctx, c.crn.KeyID, b64, nil)
		return err
	})
	if err != nil {
		return WrappedDEK{}, c.withState(ctx, err)
	}
	if res.CipherText == "" {
		return WrappedDEK{}, &Error{Op: "wrap", Key: c.crn.String(), Err: errors.New("the key service returned no ciphertext")}
	}
	w := WrappedDEK{Ciphertext: res.CipherText}
	if res.KeyVersion != nil {
		w.KeyVersion = res.KeyVersion.ID
	}
	return w, nil
}

// GenerateDEK has the key service generate a 32-byte DEK and wrap it. The
// returned DEK is the caller's to Zero.
func (c *Client) GenerateDEK(ctx context.Context) (*secret.DEK, WrappedDEK, error) {
	var res *kp.KeyActionResponse
	_, err := c.call(ctx, "generate", func(ctx context.Context, _ *callState) error {
		var err error
		res, err = c.kp.WrapCreateDEKV2(ctx, c.crn.KeyID, nil)
		return err
	})
	if err != nil {
		return nil, WrappedDEK{}, c.withState(ctx, err)
	}
	plain := []byte(res.PlainText)
	defer clear(plain)
	dek, err := decodeDEK(plain)
	if err != nil {
		return nil, WrappedDEK{}, &Error{Op: "generate", Key: c.crn.String(), Err: err}
	}
	if dek.Len() != secret.DEK256 {
		n := dek.Len()
		dek.Zero()
		return nil, WrappedDEK{}, &Error{Op: "generate", Key: c.crn.String(), Err: fmt.Errorf("the key service generated a %d-byte DEK, want %d", n, secret.DEK256)}
	}
	if res.CipherText == "" {
		dek.Zero()
		return nil, WrappedDEK{}, &Error{Op: "generate", Key: c.crn.String(), Err: errors.New("the key service returned no ciphertext")}
	}
	w := WrappedDEK{Ciphertext: res.CipherText}
	if res.KeyVersion != nil {
		w.KeyVersion = res.KeyVersion.ID
	}
	return dek, w, nil
}

// unwrapVersions are the version fields of an unwrap answer, read from the
// buffered body because the SDK drops rewrappedKeyVersion (../docs/CLOUD.md §1.4).
type unwrapVersions struct {
	KeyVersion          *struct{ ID string } `json:"keyVersion"`
	RewrappedKeyVersion *struct{ ID string } `json:"rewrappedKeyVersion"`
}

// Unwrap decrypts w. The returned DEK is the caller's to Zero. When the root
// key was rotated since w was made, rewrapped holds the DEK wrapped by the
// newest key version; store it in place of w.
func (c *Client) Unwrap(ctx context.Context, w WrappedDEK) (*secret.DEK, *WrappedDEK, error) {
	if w.Ciphertext == "" {
		return nil, nil, &Error{Op: "unwrap", Key: c.crn.String(), Kind: ErrBadCiphertext, Err: errors.New("empty ciphertext")}
	}
	var plain, rewrapped []byte
	var versions unwrapVersions
	_, err := c.call(ctx, "unwrap", func(ctx context.Context, st *callState) error {
		var err error
		plain, rewrapped, err = c.kp.UnwrapV2(ctx, c.crn.KeyID, []byte(w.Ciphertext), nil)
		if err == nil {
			if _, _, last := st.result(); last != nil {
				_ = json.Unmarshal(last.body, &versions) // best effort: versions are informative
			}
		}
		return err
	})
	defer clear(plain)
	if err != nil {
		return nil, nil, c.withState(ctx, err)
	}
	dek, err := decodeDEK(plain)
	if err != nil {
		return nil, nil, &Error{Op: "unwrap", Key: c.crn.String(), Err: err}
	}
	if len(rewrapped) == 0 || string(rewrapped) == w.Ciphertext {
		return dek, nil, nil
	}
	nw := &WrappedDEK{Ciphertext: string(rewrapped)}
	if versions.RewrappedKeyVersion != nil {
		nw.KeyVersion = versions.RewrappedKeyVersion.ID
	}
	c.log.LogAttrs(ctx, slog.LevelInfo, "kms: the root key was rotated; the DEK was re-wrapped with the newest version",
		slog.String("key", c.crn.KeyID), slog.String("keyVersion", nw.KeyVersion))
	return dek, nw, nil
}

// withState fills in the key's state for ErrKeyNotActive, best effort, so
// that the error can say which state the key is in.
func (c *Client) withState(ctx context.Context, err error) error {
	var e *Error
	if !errors.As(err, &e) || e.Kind != ErrKeyNotActive || e.State != StateUnknown {
		return err
	}
	if info, derr := c.Describe(ctx); derr == nil {
		e.State = info.State
	}
	return err
}

// decodeDEK decodes a base64 DEK from the key service into a DEK, clearing
// the intermediate copy.
func decodeDEK(b64 []byte) (*secret.DEK, error) {
	raw := make([]byte, base64.StdEncoding.DecodedLen(len(b64)))
	defer clear(raw)
	n, err := base64.StdEncoding.Decode(raw, b64)
	if err != nil {
		// The base64 error quotes a byte offset only, never the data.
		return nil, fmt.Errorf("decoding the DEK from the key service: %w", err)
	}
	dek, err := secret.NewDEK(raw[:n])
	if err != nil {
		return nil, fmt.Errorf("the key service returned a DEK that is not usable: %w", err)
	}
	return dek, nil
}

// NewDEK makes a DEK of size bytes and its wrapped form: a 32-byte
// (secret.DEK256) DEK is generated by the key service (GenerateDEK); a
// 64-byte (secret.DEK512) DEK, which key services do not generate, comes
// from crypto/rand and is wrapped with Wrap. The DEK is the caller's to Zero.
func NewDEK(ctx context.Context, ks KeyService, size int) (*secret.DEK, WrappedDEK, error) {
	switch size {
	case secret.DEK256:
		return ks.GenerateDEK(ctx)
	case secret.DEK512:
		dek, err := secret.GenerateDEK(size)
		if err != nil {
			return nil, WrappedDEK{}, err
		}
		w, err := ks.Wrap(ctx, dek)
		if err != nil {
			dek.Zero()
			return nil, WrappedDEK{}, err
		}
		return dek, w, nil
	}
	return nil, WrappedDEK{}, fmt.Errorf("kms: %w (asked for %d bytes)", secret.ErrDEKSize, size)
}

// credentialsRefused reports whether a token source's error says the
// credentials were refused (see TokenSource).
func credentialsRefused(err error) bool {
	var r interface{ CredentialsRefused() bool }
	return errors.As(err, &r) && r.CredentialsRefused()
}
