package kmssim

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/e2eimage/e2eimage/internal/cloudsim/simcore"
)

// maxBody bounds request bodies; key API bodies are small.
const maxBody = 1 << 20

const moreInfo = "https://cloud.ibm.com/apidocs/key-protect"

// Handler serves the key API under /api/v2/.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /api/v2/keys", s.withAuth(s.createKey))
	mux.HandleFunc("GET /api/v2/keys", s.withAuth(s.listKeys))
	mux.HandleFunc("HEAD /api/v2/keys", s.withAuth(s.headKeys))
	mux.HandleFunc("GET /api/v2/keys/{id}", s.withAuth(s.getKey))
	mux.HandleFunc("GET /api/v2/keys/{id}/metadata", s.withAuth(s.getKey))
	mux.HandleFunc("POST /api/v2/keys/{id}/actions/{action}", s.withAuth(s.keyAction))
	mux.HandleFunc("POST /api/v2/keys/{id}", s.withAuth(s.legacyAction))
	mux.HandleFunc("DELETE /api/v2/keys/{id}", s.withAuth(s.deleteKey))
	mux.HandleFunc("DELETE /api/v2/keys/{id}/purge", s.withAuth(s.purgeKey))
	mux.HandleFunc("POST /api/v2/keys/{id}/restore", s.withAuth(s.restoreKey))
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, "NOT_FOUND_ERR", "Not Found: the simulated key service does not implement "+r.Method+" "+r.URL.Path)
	})
	return mux
}

// call is one authenticated request.
type call struct {
	p     simcore.Principal
	r     *http.Request
	start time.Time
}

func (s *Server) withAuth(h func(http.ResponseWriter, *call)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if id := r.Header.Get("correlation-id"); id != "" {
			w.Header().Set("Correlation-Id", id)
		}
		inst := r.Header.Get("bluemix-instance")
		if inst == "" {
			writeError(w, http.StatusBadRequest, "MISSING_INSTANCE_ERR", "Bad Request: the bluemix-instance header is required")
			return
		}
		auth := r.Header.Get("authorization")
		p, ok := s.cfg.Identity.LookupToken(auth)
		if auth == "" || !ok {
			writeError(w, http.StatusUnauthorized, "UNAUTHORIZED_ERR", "Unauthorized: The user does not have access to the specified resource")
			return
		}
		if inst != s.cfg.InstanceID || p.AccountID != s.cfg.AccountID ||
			!s.cfg.Authz.HasAccess(p.AccountID, p.IAMID, s.cfg.ServiceName, s.cfg.InstanceID) {
			s.log.Debug("kmssim: access denied", "iam_id", p.IAMID, "instance", inst)
			writeError(w, http.StatusUnauthorized, "UNAUTHORIZED_ERR", "Unauthorized: The user does not have access to the specified resource")
			return
		}
		h(w, &call{p: p, r: r, start: s.now()})
	}
}

// apiErr is a failure with its KP status and reason code.
type apiErr struct {
	status int
	code   string
	msg    string
}

func (e *apiErr) Error() string { return e.msg }

func errf(status int, code, format string, args ...any) *apiErr {
	return &apiErr{status: status, code: code, msg: fmt.Sprintf(format, args...)}
}

func writeError(w http.ResponseWriter, status int, code, msg string) {
	res := map[string]any{"errorMsg": msg}
	if code != "" {
		res["reasons"] = []any{map[string]any{"code": code, "message": msg, "status": status, "moreInfo": moreInfo}}
	}
	writeJSON(w, status, map[string]any{
		"metadata":  map[string]any{"collectionType": TypeError, "collectionTotal": 1},
		"resources": []any{res},
	})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		http.Error(w, `{"errorMsg":"encoding the response failed"}`, http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

func writeKeys(w http.ResponseWriter, status int, keys []map[string]any) {
	res := make([]any, len(keys))
	for i, k := range keys {
		res[i] = k
	}
	writeJSON(w, status, map[string]any{
		"metadata":  map[string]any{"collectionType": TypeKey, "collectionTotal": len(keys)},
		"resources": res,
	})
}

// readBody decodes a JSON body into v; an empty body leaves v alone.
func readBody(r *http.Request, v any) *apiErr {
	b, err := io.ReadAll(io.LimitReader(r.Body, maxBody+1))
	if err != nil {
		return errf(http.StatusBadRequest, "BAD_BODY_ERR", "Bad Request: reading the request body: %v", err)
	}
	if len(b) > maxBody {
		return errf(http.StatusRequestEntityTooLarge, "BODY_TOO_LARGE_ERR", "Request Entity Too Large: the body exceeds %d bytes", maxBody)
	}
	if len(strings.TrimSpace(string(b))) == 0 {
		return nil
	}
	if err := json.Unmarshal(b, v); err != nil {
		return errf(http.StatusBadRequest, "BAD_BODY_ERR", "Bad Request: the request body is not valid JSON")
	}
	return nil
}

func fmtTime(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05Z") }

// json renders a key as Key Protect does. withPayload adds a standard key's
// material (GET keys/{id}, never metadata or list).
func (s *Server) keyJSON(k *key, now time.Time, withPayload bool) map[string]any {
	v := k.latest()
	m := map[string]any{
		"id":             k.ID,
		"name":           k.Name,
		"type":           TypeKey,
		"algorithmType":  "AES",
		"createdBy":      k.CreatedBy,
		"creationDate":   fmtTime(k.Created),
		"lastUpdateDate": fmtTime(k.LastUpdate),
		"keyVersion":     map[string]any{"id": v.ID, "creationDate": fmtTime(v.Created)},
		"keyRingID":      k.KeyRingID,
		"extractable":    k.Extractable,
		"imported":       k.Imported,
		"state":          k.stateLocked(now),
		"crn":            s.KeyCRN(k.ID),
		"deleted":        k.deleted != nil,
		"dualAuthDelete": map[string]any{"enabled": false},
	}
	if k.Description != "" {
		m["description"] = k.Description
	}
	if len(k.Aliases) > 0 {
		m["aliases"] = k.Aliases
	}
	if k.LastRotate != nil {
		m["lastRotateDate"] = fmtTime(*k.LastRotate)
	}
	if k.Expiration != nil {
		m["expirationDate"] = fmtTime(*k.Expiration)
	}
	if k.deleted != nil {
		m["deletionDate"] = fmtTime(*k.deleted)
		m["deletedBy"] = k.deletedBy
		m["purgeAllowed"] = now.Sub(*k.deleted) >= PurgeWait
		m["purgeAllowedFrom"] = fmtTime(k.deleted.Add(PurgeWait))
		m["purgeScheduledOn"] = fmtTime(k.deleted.Add(AutoPurge))
	}
	if withPayload && k.Extractable && k.deleted == nil {
		m["payload"] = base64.StdEncoding.EncodeToString(k.payload)
	}
	return m
}

// event builds the Activity Tracker event of one key request.
func (s *Server) event(c *call, action string, k *key, status int, fail string, resp map[string]any) simcore.Event {
	outcome, sev := simcore.OutcomeSuccess, simcore.SeverityNormal
	if status >= 400 {
		outcome, sev = simcore.OutcomeFailure, simcore.SeverityWarning
	}
	if strings.HasSuffix(action, ".delete") || strings.HasSuffix(action, ".disable") || strings.HasSuffix(action, ".purge") {
		sev = simcore.SeverityWarning
	}
	target := simcore.Target{ID: s.InstanceCRN(), Name: s.cfg.InstanceID, TypeURI: "kms/secrets"}
	if k != nil {
		target = simcore.Target{ID: s.KeyCRN(k.ID), Name: k.Name, TypeURI: "kms/secrets"}
	}
	typeURI := "service/security/account/user"
	if strings.HasPrefix(c.p.IAMID, "iam-ServiceId-") {
		typeURI = "service/security/account/serviceid"
	}
	svcLabel := "Key Protect"
	if s.cfg.ServiceName == ServiceHPCS {
		svcLabel = "Hyper Protect Crypto Services"
	}
	verb := action[strings.LastIndexByte(action, '.')+1:]
	msg := svcLabel + ": " + verb + " secret"
	if k != nil {
		msg += " " + k.Name
	}
	if outcome == simcore.OutcomeFailure {
		msg += " -failure"
	}
	return simcore.Event{
		Action:    action,
		Outcome:   outcome,
		Severity:  sev,
		EventTime: c.start,
		Initiator: simcore.Initiator{
			ID: c.p.IAMID, Name: c.p.Name, TypeURI: typeURI,
			Credential: simcore.Credential{Type: "token"},
			Host:       simcore.Host{Address: simcore.RemoteHost(c.r)},
		},
		Target: target,
		Reason: simcore.Reason{ReasonCode: status, ReasonType: http.StatusText(status), ReasonForFailure: fail},
		RequestData: map[string]any{
			"requestURI": c.r.URL.RequestURI(),
			"instanceID": s.cfg.InstanceID,
			"method":     c.r.Method,
		},
		ResponseData:  resp,
		LogSourceCRN:  s.InstanceCRN(),
		CorrelationID: c.r.Header.Get("correlation-id"),
		Message:       msg,
	}
}

// fail writes an error and records the failure event.
func (s *Server) fail(w http.ResponseWriter, c *call, action string, k *key, e *apiErr) {
	resp := map[string]any{}
	if k != nil {
		resp["keyState"] = k.stateLocked(s.now())
	}
	s.record(s.event(c, action, k, e.status, e.msg, resp))
	writeError(w, e.status, e.code, e.msg)
}

type createBody struct {
	Metadata  json.RawMessage `json:"metadata"`
	Resources []struct {
		Type           string   `json:"type"`
		Name           string   `json:"name"`
		Description    string   `json:"description"`
		Extractable    *bool    `json:"extractable"`
		Payload        string   `json:"payload"`
		EncryptedNonce string   `json:"encryptedNonce"`
		IV             string   `json:"iv"`
		ExpirationDate string   `json:"expirationDate"`
		Aliases        []string `json:"aliases"`
	} `json:"resources"`
}

// Name and alias bounds of the key API (2 to 90 characters).
const (
	minNameLen = 2
	maxNameLen = 90
)

func (s *Server) createKey(w http.ResponseWriter, c *call) {
	const action = "kms.secrets.create"
	var b createBody
	if e := readBody(c.r, &b); e != nil {
		s.fail(w, c, action, nil, e)
		return
	}
	if len(b.Resources) != 1 {
		s.fail(w, c, action, nil, errf(http.StatusBadRequest, "BAD_BODY_ERR", "Bad Request: the body must carry exactly one key resource"))
		return
	}
	res := b.Resources[0]
	if n := len(res.Name); n < minNameLen || n > maxNameLen {
		s.fail(w, c, action, nil, errf(http.StatusBadRequest, "BAD_BODY_ERR", "Bad Request: key name must be %d to %d characters", minNameLen, maxNameLen))
		return
	}
	if res.EncryptedNonce != "" || res.IV != "" {
		s.fail(w, c, action, nil, errf(http.StatusNotImplemented, "FEATURE_NOT_SIMULATED_ERR", "Not Implemented: secure import (encryptedNonce, iv) is not simulated"))
		return
	}
	// A missing extractable makes a standard key, the key API's default;
	// keyprotect-go-client always sends the field.
	extractable := res.Extractable == nil || *res.Extractable
	now := s.now()
	k := &key{
		ID: s.uuid(), Name: res.Name, Description: res.Description, Extractable: extractable,
		KeyRingID: "default", CreatedBy: c.p.IAMID, Created: now, LastUpdate: now, state: StateActive,
	}
	if ring := c.r.Header.Get("x-kms-key-ring"); ring != "" {
		k.KeyRingID = ring
	}
	if res.ExpirationDate != "" {
		t, err := time.Parse(time.RFC3339, res.ExpirationDate)
		if err != nil {
			s.fail(w, c, action, nil, errf(http.StatusBadRequest, "BAD_BODY_ERR", "Bad Request: expirationDate is not an RFC 3339 date"))
			return
		}
		t = t.UTC()
		k.Expiration = &t
	}
	var material []byte
	if res.Payload != "" {
		p, err := base64.StdEncoding.DecodeString(res.Payload)
		if err != nil {
			s.fail(w, c, action, nil, errf(http.StatusBadRequest, "BAD_BODY_ERR", "Bad Request: payload is not base64"))
			return
		}
		if e := checkMaterial(p, extractable); e != nil {
			s.fail(w, c, action, nil, e)
			return
		}
		material, k.Imported = p, true
	} else {
		var err error
		if material, err = newMaterial(32); err != nil {
			s.fail(w, c, action, nil, errf(http.StatusInternalServerError, "INTERNAL_SERVER_ERR", "Internal Server Error: %v", err))
			return
		}
	}
	if extractable {
		k.payload = material
		// Standard keys never wrap; the version still has an id.
		k.versions = []*version{{ID: s.uuid(), Created: now}}
	} else {
		k.versions = []*version{{ID: s.uuid(), Created: now, material: material}}
	}
	s.mu.Lock()
	for _, a := range res.Aliases {
		if n := len(a); n < minNameLen || n > maxNameLen || strings.ContainsAny(a, " /") {
			s.mu.Unlock()
			s.fail(w, c, action, nil, errf(http.StatusBadRequest, "BAD_BODY_ERR", "Bad Request: invalid alias %q", a))
			return
		}
		if _, dup := s.aliases[a]; dup {
			s.mu.Unlock()
			s.fail(w, c, action, nil, errf(http.StatusConflict, "KEY_ALIAS_NOT_UNIQUE_ERR", "Conflict: alias %q is already in use in this instance", a))
			return
		}
	}
	for _, a := range res.Aliases {
		s.aliases[a] = k.ID
	}
	k.Aliases = res.Aliases
	s.keys[k.ID] = k
	out := s.keyJSON(k, now, false)
	s.mu.Unlock()
	s.record(s.event(c, action, k, http.StatusCreated, "", map[string]any{"keyState": StateActive, "keyVersionId": k.latest().ID, "imported": k.Imported, "extractable": extractable}))
	writeKeys(w, http.StatusCreated, []map[string]any{out})
}

// checkMaterial validates imported key material: root keys must be 128,
// 192 or 256 bits (AES); standard keys at most 7,500 bytes.
func checkMaterial(p []byte, extractable bool) *apiErr {
	if extractable {
		if len(p) == 0 || len(p) > MaxPlaintext {
			return errf(http.StatusBadRequest, "BAD_BODY_ERR", "Bad Request: a standard key payload must be 1 to %d bytes", MaxPlaintext)
		}
		return nil
	}
	switch len(p) {
	case 16, 24, 32:
		return nil
	}
	return errf(http.StatusBadRequest, "BAD_BODY_ERR", "Bad Request: a root key payload must be 128, 192 or 256 bits")
}

func (s *Server) listKeys(w http.ResponseWriter, c *call) {
	const action = "kms.secrets.list"
	q := c.r.URL.Query()
	limit, offset := DefaultListLimit, 0
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 || n > MaxListLimit {
			s.fail(w, c, action, nil, errf(http.StatusBadRequest, "BAD_QUERY_PARAM_ERR", "Bad Request: limit must be 0 to %d", MaxListLimit))
			return
		}
		if n > 0 {
			limit = n
		}
	}
	if v := q.Get("offset"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			s.fail(w, c, action, nil, errf(http.StatusBadRequest, "BAD_QUERY_PARAM_ERR", "Bad Request: offset must be a non-negative integer"))
			return
		}
		offset = n
	}
	states := map[int]bool{StatePreActivation: true, StateActive: true, StateSuspended: true, StateDeactivated: true}
	if v := q.Get("state"); v != "" {
		states = map[int]bool{}
		for _, f := range strings.Split(v, ",") {
			n, err := strconv.Atoi(strings.TrimSpace(f))
			if err != nil || n < 0 || n > StateDestroyed {
				s.fail(w, c, action, nil, errf(http.StatusBadRequest, "BAD_QUERY_PARAM_ERR", "Bad Request: state must be a list of 0, 1, 2, 3, 5"))
				return
			}
			states[n] = true
		}
	}
	var extractable *bool
	if v := q.Get("extractable"); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			s.fail(w, c, action, nil, errf(http.StatusBadRequest, "BAD_QUERY_PARAM_ERR", "Bad Request: extractable must be true or false"))
			return
		}
		extractable = &b
	}
	s.mu.Lock()
	now := s.now()
	var out []map[string]any
	i := 0
	for _, k := range s.sortedLocked() {
		if s.findLocked(k.ID, now) == nil || !states[k.stateLocked(now)] || (extractable != nil && k.Extractable != *extractable) {
			continue
		}
		if i >= offset && len(out) < limit {
			out = append(out, s.keyJSON(k, now, false))
		}
		i++
	}
	s.mu.Unlock()
	if out == nil {
		out = []map[string]any{}
	}
	s.record(s.event(c, action, nil, http.StatusOK, "", map[string]any{"totalResources": len(out)}))
	writeKeys(w, http.StatusOK, out)
}

func (s *Server) headKeys(w http.ResponseWriter, c *call) {
	s.mu.Lock()
	n := 0
	now := s.now()
	for _, k := range s.keys {
		if k.stateLocked(now) != StateDestroyed {
			n++
		}
	}
	s.mu.Unlock()
	s.record(s.event(c, "kms.secrets.head", nil, http.StatusOK, "", nil))
	w.Header().Set("Key-Total", strconv.Itoa(n))
	w.WriteHeader(http.StatusOK)
}

// notFound writes the 404 of a purged or unknown key (call without s.mu).
func (s *Server) notFound(w http.ResponseWriter, c *call, action string) {
	s.fail(w, c, action, nil, errf(http.StatusNotFound, "KEY_NOT_FOUND_ERR", "Not Found: The key could not be found"))
}

// withKey calls f, under s.mu, on the key that the request's path names
// (by ID or alias) and returns the key and f's response. When there is no
// such key, or f refuses with an error, it writes the error, records the
// failure event for action and returns ok false. Call without s.mu.
func (s *Server) withKey(w http.ResponseWriter, c *call, action string, f func(k *key, now time.Time) (map[string]any, *apiErr)) (k *key, out map[string]any, ok bool) {
	s.mu.Lock()
	now := s.now()
	k = s.findLocked(c.r.PathValue("id"), now)
	if k == nil {
		s.mu.Unlock()
		s.notFound(w, c, action)
		return nil, nil, false
	}
	out, e := f(k, now)
	s.mu.Unlock()
	if e != nil {
		s.fail(w, c, action, k, e)
		return nil, nil, false
	}
	return k, out, true
}

func (s *Server) getKey(w http.ResponseWriter, c *call) {
	metadata := strings.HasSuffix(c.r.URL.Path, "/metadata")
	action := "kms.secrets.read"
	if metadata {
		action = "kms.secrets-metadata.read"
	}
	var state int
	k, out, ok := s.withKey(w, c, action, func(k *key, now time.Time) (map[string]any, *apiErr) {
		state = k.stateLocked(now)
		return s.keyJSON(k, now, !metadata), nil
	})
	if !ok {
		return
	}
	s.record(s.event(c, action, k, http.StatusOK, "", map[string]any{"keyState": state}))
	writeKeys(w, http.StatusOK, []map[string]any{out})
}

type actionBody struct {
	Plaintext  *string  `json:"plaintext"`
	Ciphertext string   `json:"ciphertext"`
	AAD        []string `json:"aad"`
	Payload    string   `json:"payload"`
}

func (s *Server) legacyAction(w http.ResponseWriter, c *call) {
	a := c.r.URL.Query().Get("action")
	if a == "" {
		s.fail(w, c, "kms.secrets.default", nil, errf(http.StatusBadRequest, "BAD_QUERY_PARAM_ERR", "Bad Request: missing action query parameter"))
		return
	}
	s.doAction(w, c, a)
}

func (s *Server) keyAction(w http.ResponseWriter, c *call) {
	s.doAction(w, c, c.r.PathValue("action"))
}

// notSimulated are key actions of the real API that the simulator refuses
// with 501 (keyprotect-go-client does not retry 501).
var notSimulated = map[string]bool{
	"setKeyForDeletion": true, "unsetKeyForDeletion": true, "sync": true,
}

func (s *Server) doAction(w http.ResponseWriter, c *call, a string) {
	switch a {
	case "wrap", "unwrap", "rewrap", "rotate", "disable", "enable":
	case "restore":
		s.restoreKey(w, c)
		return
	default:
		if notSimulated[a] {
			s.fail(w, c, "kms.secrets.default", nil, errf(http.StatusNotImplemented, "FEATURE_NOT_SIMULATED_ERR", "Not Implemented: action %s is not simulated", a))
			return
		}
		s.fail(w, c, "kms.secrets.default", nil, errf(http.StatusBadRequest, "BAD_ACTION_ERR", "Bad Request: unknown key action %q", a))
		return
	}
	action := "kms.secrets." + a
	var b actionBody
	if e := readBody(c.r, &b); e != nil {
		s.fail(w, c, action, nil, e)
		return
	}
	for _, x := range b.AAD {
		if len(x) > MaxAADEntry {
			s.fail(w, c, action, nil, errf(http.StatusBadRequest, "BAD_BODY_ERR", "Bad Request: each aad entry must be at most %d characters", MaxAADEntry))
			return
		}
	}
	var state, status int
	var latest string
	k, resp, ok := s.withKey(w, c, action, func(k *key, now time.Time) (map[string]any, *apiErr) {
		resp, st, e := s.applyLocked(k, a, &b, now)
		state, status, latest = k.stateLocked(now), st, k.latest().ID
		return resp, e
	})
	if !ok {
		return
	}
	rd := map[string]any{"keyState": state, "keyVersionId": latest}
	if kv, ok := resp["keyVersion"].(map[string]any); ok {
		rd["keyVersionId"] = kv["id"]
	}
	if k.Expiration != nil {
		rd["expirationDate"] = fmtTime(*k.Expiration)
	}
	if _, ok := resp["rewrappedKeyVersion"]; ok {
		rd["rewrappedKeyVersionId"] = latest
	}
	s.record(s.event(c, action, k, status, "", rd))
	if status == http.StatusNoContent {
		w.WriteHeader(status)
		return
	}
	writeJSON(w, status, resp)
}

// stateError maps a key state to the error an action gets in it.
func stateError(state int, allowDeactivated bool) *apiErr {
	switch state {
	case StateActive:
		return nil
	case StateDeactivated:
		if allowDeactivated {
			return nil
		}
		return errf(http.StatusBadRequest, "KEY_EXPIRED_ERR", "Bad Request: The key has expired")
	case StateDestroyed:
		return errf(http.StatusGone, "KEY_DELETED_ERR", "Gone: The key has been deleted and its material is no longer available")
	}
	return errf(http.StatusConflict, "KEY_ACTION_INVALID_STATE_ERR", "Key is not in a valid state")
}

func (s *Server) applyLocked(k *key, a string, b *actionBody, now time.Time) (map[string]any, int, *apiErr) {
	state := k.stateLocked(now)
	rootOnly := func() *apiErr {
		if k.Extractable {
			return errf(http.StatusBadRequest, "KEY_ROOT_REQ_ERR", "Bad Request: This action can only be done with a root key")
		}
		return nil
	}
	switch a {
	case "wrap":
		if e := stateError(state, false); e != nil {
			return nil, 0, e
		}
		if e := rootOnly(); e != nil {
			return nil, 0, e
		}
		var pt []byte
		generated := b.Plaintext == nil || *b.Plaintext == ""
		if generated {
			var err error
			if pt, err = newMaterial(DEKSize); err != nil {
				return nil, 0, errf(http.StatusInternalServerError, "INTERNAL_SERVER_ERR", "Internal Server Error: %v", err)
			}
		} else {
			var err error
			if pt, err = base64.StdEncoding.DecodeString(*b.Plaintext); err != nil {
				return nil, 0, errf(http.StatusBadRequest, "BAD_BODY_ERR", "Bad Request: plaintext must be base64")
			}
			if len(pt) > MaxPlaintext {
				return nil, 0, errf(http.StatusBadRequest, "BAD_BODY_ERR", "Bad Request: plaintext must be at most %d bytes", MaxPlaintext)
			}
		}
		v := k.latest()
		ct, err := s.seal(k, v, pt, b.AAD)
		if err != nil {
			return nil, 0, errf(http.StatusInternalServerError, "INTERNAL_SERVER_ERR", "Internal Server Error: %v", err)
		}
		out := map[string]any{"ciphertext": ct, "keyVersion": map[string]any{"id": v.ID, "creationDate": fmtTime(v.Created)}}
		if generated {
			out["plaintext"] = base64.StdEncoding.EncodeToString(pt)
		}
		clear(pt)
		return out, http.StatusOK, nil

	case "unwrap", "rewrap":
		if e := stateError(state, true); e != nil {
			return nil, 0, e
		}
		if e := rootOnly(); e != nil {
			return nil, 0, e
		}
		if b.Ciphertext == "" {
			return nil, 0, errf(http.StatusBadRequest, "BAD_BODY_ERR", "Bad Request: ciphertext is required")
		}
		pt, v, err := s.open(k, b.Ciphertext, b.AAD)
		if err != nil {
			return nil, 0, errf(http.StatusUnprocessableEntity, "UNPROCESSABLE_CIPHERTEXT_ERR", "Unprocessable Entity: The provided ciphertext is invalid or corrupted")
		}
		defer clear(pt)
		out := map[string]any{"keyVersion": map[string]any{"id": v.ID, "creationDate": fmtTime(v.Created)}}
		if a == "unwrap" {
			out["plaintext"] = base64.StdEncoding.EncodeToString(pt)
		}
		latest := k.latest()
		if latest != v || a == "rewrap" {
			ct, err := s.seal(k, latest, pt, b.AAD)
			if err != nil {
				return nil, 0, errf(http.StatusInternalServerError, "INTERNAL_SERVER_ERR", "Internal Server Error: %v", err)
			}
			out["ciphertext"] = ct
			out["rewrappedKeyVersion"] = map[string]any{"id": latest.ID, "creationDate": fmtTime(latest.Created)}
		}
		return out, http.StatusOK, nil

	case "rotate":
		if e := stateError(state, false); e != nil {
			return nil, 0, e
		}
		if e := rootOnly(); e != nil {
			return nil, 0, e
		}
		var material []byte
		switch {
		case k.Imported && b.Payload == "":
			return nil, 0, errf(http.StatusBadRequest, "KEY_PAYLOAD_REQ_ERR", "Bad Request: rotating an imported key needs a new payload")
		case k.Imported:
			p, err := base64.StdEncoding.DecodeString(b.Payload)
			if err != nil {
				return nil, 0, errf(http.StatusBadRequest, "BAD_BODY_ERR", "Bad Request: payload is not base64")
			}
			if e := checkMaterial(p, false); e != nil {
				return nil, 0, e
			}
			material = p
		case b.Payload != "":
			return nil, 0, errf(http.StatusBadRequest, "BAD_BODY_ERR", "Bad Request: a payload can only be given when rotating an imported key")
		default:
			var err error
			if material, err = newMaterial(32); err != nil {
				return nil, 0, errf(http.StatusInternalServerError, "INTERNAL_SERVER_ERR", "Internal Server Error: %v", err)
			}
		}
		t := now
		k.versions = append(k.versions, &version{ID: s.uuid(), Created: now, material: material})
		k.LastRotate, k.LastUpdate = &t, now
		return nil, http.StatusNoContent, nil

	case "disable":
		if state == StateDestroyed {
			return nil, 0, stateError(state, false)
		}
		if state != StateActive {
			return nil, 0, errf(http.StatusConflict, "KEY_ACTION_INVALID_STATE_ERR", "Key is not in a valid state")
		}
		k.state, k.LastUpdate = StateSuspended, now
		return nil, http.StatusNoContent, nil

	case "enable":
		if state == StateDestroyed {
			return nil, 0, stateError(state, false)
		}
		if state != StateSuspended {
			return nil, 0, errf(http.StatusConflict, "KEY_ACTION_INVALID_STATE_ERR", "Key is not in a valid state")
		}
		k.state, k.LastUpdate = StateActive, now
		return nil, http.StatusNoContent, nil
	}
	return nil, 0, errf(http.StatusBadRequest, "BAD_ACTION_ERR", "Bad Request: unknown key action %q", a)
}

// preferRepresentation reports whether the Prefer header asks for the key
// in the response.
func preferRepresentation(r *http.Request) bool {
	return strings.Contains(r.Header.Get("Prefer"), "return=representation")
}

func (s *Server) deleteKey(w http.ResponseWriter, c *call) {
	const action = "kms.secrets.delete"
	force, _ := strconv.ParseBool(c.r.URL.Query().Get("force"))
	k, out, ok := s.withKey(w, c, action, func(k *key, now time.Time) (map[string]any, *apiErr) {
		switch {
		case k.deleted != nil:
			return nil, stateError(StateDestroyed, false)
		case len(k.registration) > 0 && !force:
			return nil, errf(http.StatusConflict, "PROTECTED_RESOURCE_ERR", "Conflict: The key is protecting one or more cloud resources; delete them or use force=true")
		}
		t := now
		k.deleted, k.deletedBy, k.LastUpdate = &t, c.p.IAMID, now
		// The material stays until purge so that restore works; the API no
		// longer uses it.
		return s.keyJSON(k, now, false), nil
	})
	if !ok {
		return
	}
	s.record(s.event(c, action, k, http.StatusOK, "", map[string]any{"keyState": StateDestroyed}))
	writeRemoved(w, c.r, out)
}

func (s *Server) purgeKey(w http.ResponseWriter, c *call) {
	const action = "kms.secrets.purge"
	k, out, ok := s.withKey(w, c, action, func(k *key, now time.Time) (map[string]any, *apiErr) {
		switch {
		case k.deleted == nil:
			return nil, errf(http.StatusConflict, "KEY_ACTION_INVALID_STATE_ERR", "Key is not in a valid state: only deleted keys can be purged")
		case now.Sub(*k.deleted) < PurgeWait:
			return nil, errf(http.StatusConflict, "REQ_TOO_EARLY_ERR", "Conflict: a key can be purged only %s after its deletion", PurgeWait)
		}
		out := s.keyJSON(k, now, false)
		s.purgeLocked(k)
		return out, nil
	})
	if !ok {
		return
	}
	s.record(s.event(c, action, k, http.StatusOK, "", map[string]any{"keyState": StateDestroyed}))
	writeRemoved(w, c.r, out)
}

// writeRemoved answers a delete or a purge: with the key when the Prefer
// header asks for its representation, else 204 No Content.
func writeRemoved(w http.ResponseWriter, r *http.Request, out map[string]any) {
	if preferRepresentation(r) {
		writeKeys(w, http.StatusOK, []map[string]any{out})
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) restoreKey(w http.ResponseWriter, c *call) {
	const action = "kms.secrets.restore"
	k, out, ok := s.withKey(w, c, action, func(k *key, now time.Time) (map[string]any, *apiErr) {
		switch {
		case k.deleted == nil:
			return nil, errf(http.StatusConflict, "KEY_ACTION_INVALID_STATE_ERR", "Key is not in a valid state: only deleted keys can be restored")
		case now.Sub(*k.deleted) >= RestoreWindow:
			return nil, errf(http.StatusConflict, "KEY_RESTORE_EXPIRED", "Conflict: a key can be restored only within %s of its deletion", RestoreWindow)
		}
		k.deleted, k.deletedBy, k.state, k.LastUpdate = nil, "", StateActive, now
		return s.keyJSON(k, now, false), nil
	})
	if !ok {
		return
	}
	s.record(s.event(c, action, k, http.StatusCreated, "", map[string]any{"keyState": StateActive}))
	writeKeys(w, http.StatusCreated, []map[string]any{out})
}

// UnwrapAs unwraps a ciphertext in process on behalf of p, as a simulated
// IBM service (the image import) would through the API, and records the
// kms.secrets.unwrap event. It returns the raw plaintext.
func (s *Server) UnwrapAs(p simcore.Principal, idOrAlias, ciphertext string, aad []string) ([]byte, error) {
	req, _ := http.NewRequest(http.MethodPost, "/api/v2/keys/"+idOrAlias+"/actions/unwrap", nil)
	req.RemoteAddr = "127.0.0.1:0"
	c := &call{p: p, r: req, start: s.now()}
	const action = "kms.secrets.unwrap"
	if p.AccountID != s.cfg.AccountID || !s.cfg.Authz.HasAccess(p.AccountID, p.IAMID, s.cfg.ServiceName, s.cfg.InstanceID) {
		e := errf(http.StatusUnauthorized, "UNAUTHORIZED_ERR", "Unauthorized: The user does not have access to the specified resource")
		s.record(s.event(c, action, nil, e.status, e.msg, nil))
		return nil, e
	}
	s.mu.Lock()
	now := s.now()
	k := s.findLocked(idOrAlias, now)
	if k == nil {
		s.mu.Unlock()
		e := errf(http.StatusNotFound, "KEY_NOT_FOUND_ERR", "Not Found: The key could not be found")
		s.record(s.event(c, action, nil, e.status, e.msg, nil))
		return nil, e
	}
	resp, status, e := s.applyLocked(k, "unwrap", &actionBody{Ciphertext: ciphertext, AAD: aad}, now)
	state := k.stateLocked(now)
	s.mu.Unlock()
	if e != nil {
		s.record(s.event(c, action, k, e.status, e.msg, map[string]any{"keyState": state}))
		return nil, e
	}
	s.record(s.event(c, action, k, status, "", map[string]any{"keyState": state}))
	b64, _ := resp["plaintext"].(string)
	pt, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		return nil, errors.New("kmssim: internal plaintext encoding")
	}
	return pt, nil
}

// StatusOf returns the HTTP status and reason code of an error from
// UnwrapAs, or 0 and "" for other errors.
func StatusOf(err error) (int, string) {
	var e *apiErr
	if errors.As(err, &e) {
		return e.status, e.code
	}
	return 0, ""
}
