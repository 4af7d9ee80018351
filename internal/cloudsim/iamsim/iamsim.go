// Package iamsim simulates the parts of IBM Cloud IAM that the E2E flow uses:
// the API-key token grant, a subset of the IAM Identity API (service IDs and
// API keys) and a subset of the IAM Policy Management API (access and
// authorization policies). It implements simcore.Identity and
// simcore.Authorizer for the other simulated services.
//
// Access tokens are JWT-shaped (HS256 under a per-server random secret) and
// carry iam_id, sub, account.bss, iat and exp. Their expiry uses real wall
// time, because the SDKs cache tokens by wall time, not by the simulation
// clock; Config.TokenLifetime shortens it for tests.
//
// What this package does NOT do: refresh tokens, trusted profiles, access
// groups, custom roles, policy templates, v2 policies, rule-based
// conditions, wildcard (stringMatch) operators, entity locking and
// disabling, API key leak handling, pagination tokens, and role semantics
// (any role on a resource grants access; see HasAccess).
package iamsim

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/e2eimage/e2eimage/internal/cloudsim/simcore"
)

// DefaultTokenLifetime is how long access tokens last: IAM tokens live 60
// minutes (CLOUD.md section 3.1).
const DefaultTokenLifetime = time.Hour

// GrantTypeAPIKey is the OAuth grant type of the API key exchange.
const GrantTypeAPIKey = "urn:ibm:params:oauth:grant-type:apikey"

// Config configures a Server.
type Config struct {
	// AccountID is the simulated account (required).
	AccountID string
	// Owner is the account owner; Owner.IAMID defaults to an IBMid derived
	// from the account, Owner.Name to "owner@example.com".
	Owner simcore.Principal
	// OwnerAPIKey is the owner's API key (required). The owner has access
	// to everything in the account.
	OwnerAPIKey string
	// TokenLifetime is how long issued tokens last in real time
	// (default DefaultTokenLifetime).
	TokenLifetime time.Duration
	// Clock timestamps created entities (default: real time).
	Clock *simcore.Clock
	// Events receives Activity Tracker events (optional).
	Events simcore.EventSink
	// Logger logs requests at debug level (default: discard).
	Logger *slog.Logger
	// Rand is the source of identifiers and API key values (default
	// crypto/rand). The token signing secret always comes from crypto/rand.
	Rand io.Reader
}

// Server is a simulated IAM. It is safe for concurrent use.
type Server struct {
	cfg    Config
	secret []byte
	log    *slog.Logger
	randMu sync.Mutex

	mu         sync.Mutex
	apiKeys    map[string]*apiKey    // by id
	keyByValue map[string]*apiKey    // by secret value
	serviceIDs map[string]*serviceID // by id
	policies   map[string]*policy    // by id
	owners     map[string]bool       // iam ids with full access
	policySeq  int
}

var (
	_ simcore.Identity   = (*Server)(nil)
	_ simcore.Authorizer = (*Server)(nil)
)

// New returns a simulated IAM holding the owner's API key.
func New(cfg Config) (*Server, error) {
	if cfg.AccountID == "" {
		return nil, errors.New("iamsim: Config.AccountID is required")
	}
	if cfg.OwnerAPIKey == "" {
		return nil, errors.New("iamsim: Config.OwnerAPIKey is required")
	}
	if cfg.Owner.IAMID == "" {
		cfg.Owner.IAMID = "IBMid-" + strings.ToUpper(cfg.AccountID[:min(10, len(cfg.AccountID))])
	}
	if cfg.Owner.Name == "" {
		cfg.Owner.Name = "owner@example.com"
	}
	cfg.Owner.AccountID = cfg.AccountID
	if cfg.TokenLifetime <= 0 {
		cfg.TokenLifetime = DefaultTokenLifetime
	}
	if cfg.Rand == nil {
		cfg.Rand = rand.Reader
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	secret := make([]byte, 32)
	if _, err := rand.Read(secret); err != nil {
		return nil, fmt.Errorf("iamsim: generating the token secret: %w", err)
	}
	s := &Server{
		cfg:        cfg,
		secret:     secret,
		log:        cfg.Logger,
		apiKeys:    make(map[string]*apiKey),
		keyByValue: make(map[string]*apiKey),
		serviceIDs: make(map[string]*serviceID),
		policies:   make(map[string]*policy),
		owners:     map[string]bool{cfg.Owner.IAMID: true},
	}
	now := s.now()
	k := &apiKey{
		ID: "ApiKey-" + s.uuid(), Name: "owner-key", IamID: cfg.Owner.IAMID, AccountID: cfg.AccountID,
		CreatedBy: cfg.Owner.IAMID, CreatedAt: now, ModifiedAt: now, value: cfg.OwnerAPIKey,
		EntityTag: "1-" + s.hex(16),
	}
	k.CRN = s.crn("apikey", k.ID)
	s.apiKeys[k.ID] = k
	s.keyByValue[k.value] = k
	return s, nil
}

// Owner returns the account owner's principal.
func (s *Server) Owner() simcore.Principal { return s.cfg.Owner }

// AccountID returns the simulated account's ID.
func (s *Server) AccountID() string { return s.cfg.AccountID }

func (s *Server) now() time.Time {
	if s.cfg.Clock != nil {
		return s.cfg.Clock.Now().UTC()
	}
	return time.Now().UTC()
}

func (s *Server) read(b []byte) {
	s.randMu.Lock()
	defer s.randMu.Unlock()
	if _, err := io.ReadFull(s.cfg.Rand, b); err != nil {
		// A failing Rand is a programming error in the caller's setup;
		// fall back to crypto/rand rather than issue predictable values.
		_, _ = rand.Read(b)
	}
}

func (s *Server) uuid() string {
	var b [16]byte
	s.read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

func (s *Server) hex(n int) string {
	b := make([]byte, n)
	s.read(b)
	return fmt.Sprintf("%x", b)
}

// NewAPIKeyValue returns a fresh random API key value in IBM's shape (44
// URL-safe characters).
func (s *Server) newKeyValue() string {
	b := make([]byte, 33)
	s.read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

func (s *Server) crn(kind, id string) string {
	return "crn:v1:bluemix:public:iam-identity::a/" + s.cfg.AccountID + "::" + kind + ":" + id
}

func (s *Server) record(ev simcore.Event) {
	if s.cfg.Events != nil {
		s.cfg.Events.Record(ev)
	}
}

// LookupAPIKey returns the principal that owns apiKey.
func (s *Server) LookupAPIKey(key string) (simcore.Principal, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	k, ok := s.keyByValue[key]
	if !ok {
		return simcore.Principal{}, false
	}
	return s.principalLocked(k.IamID), true
}

func (s *Server) principalLocked(iamID string) simcore.Principal {
	if iamID == s.cfg.Owner.IAMID {
		return s.cfg.Owner
	}
	p := simcore.Principal{AccountID: s.cfg.AccountID, IAMID: iamID, Name: iamID}
	for _, sid := range s.serviceIDs {
		if sid.IamID == iamID {
			p.Name = sid.Name
		}
	}
	return p
}

// claims are the JWT claims the simulated IAM puts in access tokens.
type claims struct {
	IamID     string        `json:"iam_id"`
	ID        string        `json:"id"`
	RealmID   string        `json:"realmid"`
	JTI       string        `json:"jti"`
	Sub       string        `json:"sub"`
	SubType   string        `json:"sub_type"`
	Name      string        `json:"name,omitempty"`
	Account   accountClaims `json:"account"`
	IAT       int64         `json:"iat"`
	Exp       int64         `json:"exp"`
	Iss       string        `json:"iss"`
	GrantType string        `json:"grant_type"`
	Scope     string        `json:"scope"`
	ClientID  string        `json:"client_id"`
}

type accountClaims struct {
	Valid bool   `json:"valid"`
	Bss   string `json:"bss"`
}

var jwtHeader = base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"HS256","typ":"JWT","kid":"cloudsim"}`))

// IssueToken returns an access token for the holder of apiKey, as the token
// grant would, with its expiry time.
func (s *Server) IssueToken(apiKey string) (token string, expires time.Time, err error) {
	p, ok := s.LookupAPIKey(apiKey)
	if !ok {
		return "", time.Time{}, errors.New("iamsim: API key not found")
	}
	return s.issue(p)
}

func (s *Server) issue(p simcore.Principal) (string, time.Time, error) {
	now := time.Now()
	exp := now.Add(s.cfg.TokenLifetime)
	c := claims{
		IamID: p.IAMID, ID: p.IAMID, JTI: s.uuid(), Sub: p.Name,
		Account: accountClaims{Valid: true, Bss: p.AccountID},
		IAT:     now.Unix(), Exp: exp.Unix(), Iss: "https://iam.cloud.ibm.com/identity",
		GrantType: GrantTypeAPIKey, Scope: "ibm openid", ClientID: "default",
	}
	if strings.HasPrefix(p.IAMID, "iam-ServiceId-") {
		c.RealmID, c.SubType, c.Sub = "iam", "ServiceId", strings.TrimPrefix(p.IAMID, "iam-")
		c.Name = p.Name
	} else {
		c.RealmID, c.SubType = "IBMid", "user"
	}
	payload, err := json.Marshal(c)
	if err != nil {
		return "", time.Time{}, fmt.Errorf("iamsim: encoding token claims: %w", err)
	}
	signing := jwtHeader + "." + base64.RawURLEncoding.EncodeToString(payload)
	return signing + "." + base64.RawURLEncoding.EncodeToString(s.sign(signing)), exp, nil
}

func (s *Server) sign(signing string) []byte {
	m := hmac.New(sha256.New, s.secret)
	m.Write([]byte(signing))
	return m.Sum(nil)
}

// LookupToken validates an access token (signature and real-time expiry)
// and returns its principal. A "Bearer " prefix is accepted.
func (s *Server) LookupToken(token string) (simcore.Principal, bool) {
	c, ok := s.parseToken(token)
	if !ok {
		return simcore.Principal{}, false
	}
	return simcore.Principal{AccountID: c.Account.Bss, IAMID: c.IamID, Name: tokenName(c)}, true
}

func tokenName(c claims) string {
	if c.Name != "" {
		return c.Name
	}
	return c.Sub
}

func (s *Server) parseToken(token string) (claims, bool) {
	token = strings.TrimSpace(token)
	if len(token) > 7 && strings.EqualFold(token[:7], "bearer ") {
		token = strings.TrimSpace(token[7:])
	}
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return claims{}, false
	}
	sig, err := base64.RawURLEncoding.DecodeString(parts[2])
	if err != nil || !hmac.Equal(sig, s.sign(parts[0]+"."+parts[1])) {
		return claims{}, false
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return claims{}, false
	}
	var c claims
	if err := json.Unmarshal(payload, &c); err != nil {
		return claims{}, false
	}
	if time.Now().Unix() >= c.Exp {
		return claims{}, false
	}
	return c, true
}

// Handler serves every simulated IAM endpoint: the token grant, IAM
// Identity and IAM Policy Management. The same handler sits behind the IAM,
// IAMIdentity and IAMPolicy URLs.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /identity/token", s.handleToken)
	mux.HandleFunc("POST /oidc/token", s.handleToken)

	mux.Handle("POST /v1/serviceids/{$}", s.authed(s.createServiceID))
	mux.Handle("POST /v1/serviceids", s.authed(s.createServiceID))
	mux.Handle("GET /v1/serviceids/{$}", s.authed(s.listServiceIDs))
	mux.Handle("GET /v1/serviceids", s.authed(s.listServiceIDs))
	mux.Handle("GET /v1/serviceids/{id}", s.authed(s.getServiceID))
	mux.Handle("DELETE /v1/serviceids/{id}", s.authed(s.deleteServiceID))

	mux.Handle("POST /v1/apikeys", s.authed(s.createAPIKey))
	mux.Handle("POST /v1/apikeys/{$}", s.authed(s.createAPIKey))
	mux.Handle("GET /v1/apikeys", s.authed(s.listAPIKeys))
	mux.Handle("GET /v1/apikeys/{$}", s.authed(s.listAPIKeys))
	mux.Handle("GET /v1/apikeys/{id}", s.authed(s.getAPIKey))
	mux.Handle("DELETE /v1/apikeys/{id}", s.authed(s.deleteAPIKey))

	mux.Handle("POST /v1/policies", s.authed(s.createPolicy))
	mux.Handle("GET /v1/policies", s.authed(s.listPolicies))
	mux.Handle("GET /v1/policies/{id}", s.authed(s.getPolicy))
	mux.Handle("DELETE /v1/policies/{id}", s.authed(s.deletePolicy))

	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeAPIError(w, r, http.StatusNotFound, "not_found", "BXNIM0404E",
			"The simulated IAM does not implement "+r.Method+" "+r.URL.Path)
	})
	return mux
}

func (s *Server) handleToken(w http.ResponseWriter, r *http.Request) {
	reqID := s.uuid()
	if err := r.ParseForm(); err != nil {
		writeTokenError(w, http.StatusBadRequest, "BXNIM0109E", "Property missing or empty: the request body is not a form.", reqID)
		return
	}
	switch gt := r.PostForm.Get("grant_type"); gt {
	case GrantTypeAPIKey:
	case "":
		writeTokenError(w, http.StatusBadRequest, "BXNIM0109E", "Property missing or empty. Property name(s): 'grant_type'.", reqID)
		return
	default:
		writeTokenError(w, http.StatusBadRequest, "BXNIM0104E", "Grant type "+gt+" is not supported by the simulated IAM.", reqID)
		return
	}
	key := r.PostForm.Get("apikey")
	if key == "" {
		writeTokenError(w, http.StatusBadRequest, "BXNIM0109E", "Property missing or empty. Property name(s): 'apikey'.", reqID)
		return
	}
	p, ok := s.LookupAPIKey(key)
	if !ok {
		writeTokenError(w, http.StatusBadRequest, "BXNIM0415E", "Provided API key could not be found.", reqID)
		return
	}
	tok, exp, err := s.issue(p)
	if err != nil {
		writeTokenError(w, http.StatusInternalServerError, "BXNIM0000E", err.Error(), reqID)
		return
	}
	resp := map[string]any{
		"access_token":  tok,
		"refresh_token": "not_supported",
		"token_type":    "Bearer",
		"expires_in":    int64(s.cfg.TokenLifetime / time.Second),
		"expiration":    exp.Unix(),
		"scope":         "ibm openid",
	}
	if p.IAMID == s.cfg.Owner.IAMID {
		resp["ims_user_id"] = 1234567
	}
	s.log.Debug("iamsim: token issued", "iam_id", p.IAMID)
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusOK, resp)
}

func writeTokenError(w http.ResponseWriter, status int, code, msg, reqID string) {
	writeJSON(w, status, map[string]any{
		"errorCode":    code,
		"errorMessage": msg,
		"context":      map[string]any{"requestId": reqID},
	})
}

// authed wraps a handler that needs a valid bearer token; the principal is
// passed in.
func (s *Server) authed(h func(http.ResponseWriter, *http.Request, simcore.Principal)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		auth := r.Header.Get("Authorization")
		if auth == "" {
			writeAPIError(w, r, http.StatusUnauthorized, "missing_token", "BXNIM0307E", "The Authorization header is missing.")
			return
		}
		p, ok := s.LookupToken(auth)
		if !ok {
			writeAPIError(w, r, http.StatusUnauthorized, "invalid_token", "BXNIM0308E", "The access token is invalid or expired.")
			return
		}
		h(w, r, p)
	})
}

// canManage reports whether p may manage IAM entities of type service
// ("iam-identity" or "iam-access-management") in its account.
func (s *Server) canManage(p simcore.Principal, service string) bool {
	return p.AccountID == s.cfg.AccountID && s.HasAccess(p.AccountID, p.IAMID, service, "")
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		http.Error(w, `{"error":"encoding the response failed"}`, http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

// writeAPIError writes the error envelope of the IAM Identity and Policy
// Management APIs: errors[{code, message_code, message, details?}],
// status_code and trace.
func writeAPIError(w http.ResponseWriter, r *http.Request, status int, code, msgCode, msg string) {
	writeAPIErrorDetails(w, r, status, code, msgCode, msg, nil)
}

func writeAPIErrorDetails(w http.ResponseWriter, r *http.Request, status int, code, msgCode, msg string, details any) {
	e := map[string]any{"code": code, "message": msg}
	if msgCode != "" {
		e["message_code"] = msgCode
	}
	if details != nil {
		e["details"] = details
	}
	trace := r.Header.Get("Transaction-Id")
	if trace == "" {
		trace = "cloudsim-" + fmt.Sprint(time.Now().UnixNano())
	}
	writeJSON(w, status, map[string]any{"errors": []any{e}, "status_code": status, "trace": trace})
}

func decodeBody(r *http.Request, v any) error {
	const maxBody = 1 << 20 // request bodies of these APIs are small
	dec := json.NewDecoder(io.LimitReader(r.Body, maxBody))
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("the request body is not valid JSON: %w", err)
	}
	return nil
}

func formatTime(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000Z") }

func baseURL(r *http.Request) string { return "http://" + r.Host }
