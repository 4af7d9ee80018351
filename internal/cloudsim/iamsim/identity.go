package iamsim

import (
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/e2eimage/e2eimage/internal/cloudsim/simcore"
)

// IAM service names whose access policies let a service ID manage IAM
// entities (the account owner may always).
const (
	ServiceIAMIdentity = "iam-identity"
	ServiceIAMAccess   = "iam-access-management"
)

// MinAPIKeyLength is the shortest API key value a caller may supply
// (../../../docs/CLOUD.md section 3.2: a caller-chosen value has at least 32
// characters).
const MinAPIKeyLength = 32

type serviceID struct {
	ID                 string
	IamID              string
	EntityTag          string
	CRN                string
	CreatedAt          time.Time
	ModifiedAt         time.Time
	AccountID          string
	GroupID            string
	Name               string
	Description        string
	UniqueInstanceCrns []string
}

type apiKey struct {
	ID          string
	EntityTag   string
	CRN         string
	CreatedAt   time.Time
	CreatedBy   string
	ModifiedAt  time.Time
	Name        string
	Description string
	IamID       string
	AccountID   string
	StoreValue  bool
	value       string
}

// serviceIDJSON follows iamidentityv1.ServiceID.
func (s *serviceID) json(inlineKey map[string]any) map[string]any {
	m := map[string]any{
		"id":          s.ID,
		"iam_id":      s.IamID,
		"entity_tag":  s.EntityTag,
		"crn":         s.CRN,
		"locked":      false,
		"created_at":  formatTime(s.CreatedAt),
		"modified_at": formatTime(s.ModifiedAt),
		"account_id":  s.AccountID,
		"name":        s.Name,
	}
	if s.GroupID != "" {
		m["group_id"] = s.GroupID
	}
	if s.Description != "" {
		m["description"] = s.Description
	}
	if len(s.UniqueInstanceCrns) > 0 {
		m["unique_instance_crns"] = s.UniqueInstanceCrns
	}
	if inlineKey != nil {
		m["apikey"] = inlineKey
	}
	return m
}

// json follows iamidentityv1.APIKey. The value is included when reveal is
// set (on creation) or when the key was created with store_value.
func (k *apiKey) json(reveal bool) map[string]any {
	m := map[string]any{
		"id":          k.ID,
		"entity_tag":  k.EntityTag,
		"crn":         k.CRN,
		"locked":      false,
		"disabled":    false,
		"created_at":  formatTime(k.CreatedAt),
		"created_by":  k.CreatedBy,
		"modified_at": formatTime(k.ModifiedAt),
		"name":        k.Name,
		"iam_id":      k.IamID,
		"account_id":  k.AccountID,
		"apikey":      "",
	}
	if k.Description != "" {
		m["description"] = k.Description
	}
	if reveal || k.StoreValue {
		m["apikey"] = k.value
	}
	return m
}

type createServiceIDReq struct {
	AccountID          string   `json:"account_id"`
	Name               string   `json:"name"`
	Description        string   `json:"description"`
	GroupID            string   `json:"group_id"`
	UniqueInstanceCrns []string `json:"unique_instance_crns"`
	Apikey             *struct {
		Name        string `json:"name"`
		Description string `json:"description"`
		Apikey      string `json:"apikey"`
		StoreValue  *bool  `json:"store_value"`
	} `json:"apikey"`
}

// CreateServiceID creates a service ID directly (for seeding and tests) and
// returns its id and iam_id.
func (s *Server) CreateServiceID(name string) (id, iamID string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	sid := s.newServiceIDLocked(name, "", "")
	return sid.ID, sid.IamID
}

func (s *Server) newServiceIDLocked(name, desc, group string) *serviceID {
	now := s.now()
	u := s.uuid()
	sid := &serviceID{
		ID: "ServiceId-" + u, IamID: "iam-ServiceId-" + u, EntityTag: "1-" + s.hex(16),
		CreatedAt: now, ModifiedAt: now, AccountID: s.cfg.AccountID, Name: name,
		Description: desc, GroupID: group,
	}
	sid.CRN = s.crn("serviceid", sid.ID)
	s.serviceIDs[sid.ID] = sid
	return sid
}

// CreateAPIKey creates an API key for iamID directly (for seeding and
// tests) and returns its value.
func (s *Server) CreateAPIKey(iamID, name string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.newAPIKeyLocked(iamID, name, "", "", s.cfg.Owner.IAMID, false).value
}

func (s *Server) newAPIKeyLocked(iamID, name, desc, value, createdBy string, store bool) *apiKey {
	if value == "" {
		value = s.newKeyValue()
	}
	now := s.now()
	k := &apiKey{
		ID: "ApiKey-" + s.uuid(), EntityTag: "1-" + s.hex(16), CreatedAt: now, CreatedBy: createdBy,
		ModifiedAt: now, Name: name, Description: desc, IamID: iamID, AccountID: s.cfg.AccountID,
		StoreValue: store, value: value,
	}
	k.CRN = s.crn("apikey", k.ID)
	s.apiKeys[k.ID] = k
	s.keyByValue[value] = k
	return k
}

func (s *Server) createServiceID(w http.ResponseWriter, r *http.Request, p simcore.Principal) {
	var req createServiceIDReq
	if err := decodeBody(r, &req); err != nil {
		writeAPIError(w, r, http.StatusBadRequest, "invalid_body", "BXNIM0109E", err.Error())
		return
	}
	if req.AccountID == "" || req.Name == "" {
		writeAPIError(w, r, http.StatusBadRequest, "missing_property", "BXNIM0109E", "Property missing or empty. Property name(s): 'account_id', 'name'.")
		return
	}
	if req.AccountID != s.cfg.AccountID || !s.canManage(p, ServiceIAMIdentity) {
		writeAPIError(w, r, http.StatusForbidden, "forbidden", "BXNIM0513E", "You are not authorized to create service IDs in account "+req.AccountID+".")
		return
	}
	if req.Apikey != nil && req.Apikey.Name == "" {
		writeAPIError(w, r, http.StatusBadRequest, "missing_property", "BXNIM0109E", "Property missing or empty. Property name(s): 'apikey.name'.")
		return
	}
	if req.Apikey != nil && req.Apikey.Apikey != "" && len(req.Apikey.Apikey) < MinAPIKeyLength {
		writeAPIError(w, r, http.StatusBadRequest, "invalid_apikey", "BXNIM0520E", "The API key value must be at least 32 characters long.")
		return
	}
	s.mu.Lock()
	if req.Apikey != nil && req.Apikey.Apikey != "" {
		if _, dup := s.keyByValue[req.Apikey.Apikey]; dup {
			s.mu.Unlock()
			writeAPIError(w, r, http.StatusConflict, "conflict", "BXNIM0521E", "An API key with this value already exists.")
			return
		}
	}
	sid := s.newServiceIDLocked(req.Name, req.Description, req.GroupID)
	sid.UniqueInstanceCrns = req.UniqueInstanceCrns
	var inline map[string]any
	if req.Apikey != nil {
		k := s.newAPIKeyLocked(sid.IamID, req.Apikey.Name, req.Apikey.Description, req.Apikey.Apikey, p.IAMID, req.Apikey.StoreValue != nil && *req.Apikey.StoreValue)
		inline = k.json(true)
	}
	out := sid.json(inline)
	s.mu.Unlock()
	s.record(s.iamEvent("iam-identity.serviceid.create", p, r, sid.CRN, sid.Name, http.StatusCreated))
	writeJSON(w, http.StatusCreated, out)
}

// canList checks a list call of the IAM Identity API: the account_id
// query parameter (default: the caller's account) must be this account and
// the caller's. Otherwise it writes the 403 that names what (service IDs,
// API keys) and returns false.
func (s *Server) canList(w http.ResponseWriter, r *http.Request, p simcore.Principal, what string) bool {
	acct := r.URL.Query().Get("account_id")
	if acct == "" {
		acct = p.AccountID
	}
	if acct != s.cfg.AccountID || p.AccountID != acct {
		writeAPIError(w, r, http.StatusForbidden, "forbidden", "BXNIM0513E", "You are not authorized to list "+what+" in account "+acct+".")
		return false
	}
	return true
}

func (s *Server) listServiceIDs(w http.ResponseWriter, r *http.Request, p simcore.Principal) {
	if !s.canList(w, r, p, "service IDs") {
		return
	}
	q := r.URL.Query()
	name := q.Get("name")
	s.mu.Lock()
	list := make([]*serviceID, 0, len(s.serviceIDs))
	for _, sid := range s.serviceIDs {
		if name == "" || sid.Name == name {
			list = append(list, sid)
		}
	}
	sort.Slice(list, func(i, j int) bool {
		if !list[i].CreatedAt.Equal(list[j].CreatedAt) {
			return list[i].CreatedAt.Before(list[j].CreatedAt)
		}
		return list[i].ID < list[j].ID
	})
	out := make([]any, 0, len(list))
	for _, sid := range list {
		out = append(out, sid.json(nil))
	}
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, map[string]any{"offset": 0, "limit": len(out), "serviceids": out})
}

func (s *Server) getServiceID(w http.ResponseWriter, r *http.Request, p simcore.Principal) {
	s.mu.Lock()
	sid, ok := s.serviceIDs[r.PathValue("id")]
	var out map[string]any
	if ok {
		out = sid.json(nil)
	}
	s.mu.Unlock()
	if !ok || p.AccountID != s.cfg.AccountID {
		writeAPIError(w, r, http.StatusNotFound, "not_found", "BXNIM0507E", "Service ID "+r.PathValue("id")+" not found.")
		return
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) deleteServiceID(w http.ResponseWriter, r *http.Request, p simcore.Principal) {
	if !s.canManage(p, ServiceIAMIdentity) {
		writeAPIError(w, r, http.StatusForbidden, "forbidden", "BXNIM0513E", "You are not authorized to delete service IDs.")
		return
	}
	s.mu.Lock()
	sid, ok := s.serviceIDs[r.PathValue("id")]
	if ok {
		delete(s.serviceIDs, sid.ID)
		for id, k := range s.apiKeys {
			if k.IamID == sid.IamID {
				delete(s.apiKeys, id)
				delete(s.keyByValue, k.value)
			}
		}
	}
	s.mu.Unlock()
	if !ok {
		writeAPIError(w, r, http.StatusNotFound, "not_found", "BXNIM0507E", "Service ID "+r.PathValue("id")+" not found.")
		return
	}
	s.record(s.iamEvent("iam-identity.serviceid.delete", p, r, sid.CRN, sid.Name, http.StatusNoContent))
	w.WriteHeader(http.StatusNoContent)
}

type createAPIKeyReq struct {
	Name        string `json:"name"`
	IamID       string `json:"iam_id"`
	Description string `json:"description"`
	AccountID   string `json:"account_id"`
	Apikey      string `json:"apikey"`
	StoreValue  *bool  `json:"store_value"`
}

func (s *Server) createAPIKey(w http.ResponseWriter, r *http.Request, p simcore.Principal) {
	var req createAPIKeyReq
	if err := decodeBody(r, &req); err != nil {
		writeAPIError(w, r, http.StatusBadRequest, "invalid_body", "BXNIM0109E", err.Error())
		return
	}
	if req.Name == "" || req.IamID == "" {
		writeAPIError(w, r, http.StatusBadRequest, "missing_property", "BXNIM0109E", "Property missing or empty. Property name(s): 'name', 'iam_id'.")
		return
	}
	if req.AccountID != "" && req.AccountID != s.cfg.AccountID {
		writeAPIError(w, r, http.StatusForbidden, "forbidden", "BXNIM0513E", "You are not authorized to create API keys in account "+req.AccountID+".")
		return
	}
	if req.Apikey != "" && len(req.Apikey) < MinAPIKeyLength {
		writeAPIError(w, r, http.StatusBadRequest, "invalid_apikey", "BXNIM0520E", "The API key value must be at least 32 characters long.")
		return
	}
	// A user may create keys for itself; keys for service IDs need IAM
	// Identity access.
	if req.IamID != p.IAMID && !s.canManage(p, ServiceIAMIdentity) {
		writeAPIError(w, r, http.StatusForbidden, "forbidden", "BXNIM0513E", "You are not authorized to create API keys for "+req.IamID+".")
		return
	}
	s.mu.Lock()
	known := req.IamID == s.cfg.Owner.IAMID
	for _, sid := range s.serviceIDs {
		if sid.IamID == req.IamID {
			known = true
		}
	}
	if !known {
		s.mu.Unlock()
		writeAPIError(w, r, http.StatusNotFound, "not_found", "BXNIM0507E", "No identity with iam_id "+req.IamID+" exists in the account.")
		return
	}
	if _, dup := s.keyByValue[req.Apikey]; req.Apikey != "" && dup {
		s.mu.Unlock()
		writeAPIError(w, r, http.StatusConflict, "conflict", "BXNIM0521E", "An API key with this value already exists.")
		return
	}
	k := s.newAPIKeyLocked(req.IamID, req.Name, req.Description, req.Apikey, p.IAMID, req.StoreValue != nil && *req.StoreValue)
	out := k.json(true)
	s.mu.Unlock()
	s.record(s.iamEvent("iam-identity.apikey.create", p, r, k.CRN, k.Name, http.StatusCreated))
	writeJSON(w, http.StatusCreated, out)
}

func (s *Server) listAPIKeys(w http.ResponseWriter, r *http.Request, p simcore.Principal) {
	if !s.canList(w, r, p, "API keys") {
		return
	}
	q := r.URL.Query()
	iamID := q.Get("iam_id")
	if iamID == "" {
		iamID = p.IAMID // the API lists the caller's keys by default
	}
	pageSize := 20 // the IAM Identity API's default pagesize
	if v, err := strconv.Atoi(q.Get("pagesize")); err == nil && v > 0 && v <= 100 {
		pageSize = v
	}
	s.mu.Lock()
	var list []*apiKey
	for _, k := range s.apiKeys {
		if k.IamID == iamID {
			list = append(list, k)
		}
	}
	sort.Slice(list, func(i, j int) bool {
		if !list[i].CreatedAt.Equal(list[j].CreatedAt) {
			return list[i].CreatedAt.Before(list[j].CreatedAt)
		}
		return list[i].ID < list[j].ID
	})
	if len(list) > pageSize {
		list = list[:pageSize]
	}
	out := make([]any, 0, len(list))
	for _, k := range list {
		out = append(out, k.json(false))
	}
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, map[string]any{"offset": 0, "limit": pageSize, "apikeys": out})
}

func (s *Server) getAPIKey(w http.ResponseWriter, r *http.Request, p simcore.Principal) {
	s.mu.Lock()
	k, ok := s.apiKeys[r.PathValue("id")]
	var out map[string]any
	if ok {
		out = k.json(false)
	}
	s.mu.Unlock()
	if !ok || p.AccountID != s.cfg.AccountID {
		writeAPIError(w, r, http.StatusNotFound, "not_found", "BXNIM0507E", "API key "+r.PathValue("id")+" not found.")
		return
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) deleteAPIKey(w http.ResponseWriter, r *http.Request, p simcore.Principal) {
	s.mu.Lock()
	k, ok := s.apiKeys[r.PathValue("id")]
	allowed := ok && (k.IamID == p.IAMID || s.hasAccessLocked(p.AccountID, p.IAMID, ServiceIAMIdentity, ""))
	if allowed {
		delete(s.apiKeys, k.ID)
		delete(s.keyByValue, k.value)
	}
	s.mu.Unlock()
	switch {
	case !ok:
		writeAPIError(w, r, http.StatusNotFound, "not_found", "BXNIM0507E", "API key "+r.PathValue("id")+" not found.")
	case !allowed:
		writeAPIError(w, r, http.StatusForbidden, "forbidden", "BXNIM0513E", "You are not authorized to delete API key "+k.ID+".")
	default:
		s.record(s.iamEvent("iam-identity.apikey.delete", p, r, k.CRN, k.Name, http.StatusNoContent))
		w.WriteHeader(http.StatusNoContent)
	}
}

// iamEvent builds an Activity Tracker event for an IAM management action.
func (s *Server) iamEvent(action string, p simcore.Principal, r *http.Request, targetCRN, targetName string, code int) simcore.Event {
	svc := action[:strings.IndexByte(action, '.')]
	return simcore.Event{
		Action: action, Outcome: simcore.OutcomeSuccess, Severity: simcore.SeverityNormal,
		EventTime: s.now(),
		Initiator: simcore.Initiator{
			ID: p.IAMID, Name: p.Name, TypeURI: "service/security/account/user",
			Credential: simcore.Credential{Type: "token"}, Host: simcore.Host{Address: simcore.RemoteHost(r)},
		},
		Target:       simcore.Target{ID: targetCRN, Name: targetName, TypeURI: svc + "/" + strings.Split(action, ".")[1]},
		Reason:       simcore.Reason{ReasonCode: code, ReasonType: http.StatusText(code)},
		LogSourceCRN: "crn:v1:bluemix:public:" + svc + ":global:a/" + s.cfg.AccountID + "::",
		Message:      svc + ": " + strings.Split(action, ".")[2] + " " + strings.Split(action, ".")[1] + " " + targetName,
	}
}
