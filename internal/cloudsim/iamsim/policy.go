package iamsim

import (
	"crypto/sha256"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"time"

	"github.com/e2eimage/e2eimage/internal/cloudsim/simcore"
)

// Policy types of IAM Policy Management v1.
const (
	PolicyAccess        = "access"
	PolicyAuthorization = "authorization"
)

// RoleReader is the service role that authorization policies for Key
// Protect and HPCS use (../../../docs/CLOUD.md section 3.3).
const RoleReader = "crn:v1:bluemix:public:iam::::serviceRole:Reader"

type attribute struct {
	Name     string `json:"name"`
	Value    string `json:"value"`
	Operator string `json:"operator,omitempty"`
}

type policyBody struct {
	Type        string `json:"type"`
	Description string `json:"description,omitempty"`
	Subjects    []struct {
		Attributes []attribute `json:"attributes"`
	} `json:"subjects"`
	Roles []struct {
		RoleID string `json:"role_id"`
	} `json:"roles"`
	Resources []struct {
		Attributes []attribute `json:"attributes"`
		Tags       []attribute `json:"tags,omitempty"`
	} `json:"resources"`
}

type policy struct {
	ID          string
	Type        string
	Description string
	Subject     []attribute
	Resource    []attribute
	Roles       []string
	CreatedAt   time.Time
	CreatedBy   string
	ETag        string
}

func attrValue(attrs []attribute, name string) string {
	for _, a := range attrs {
		if a.Name == name {
			return a.Value
		}
	}
	return ""
}

// key identifies a policy's subject and resource, for conflict detection.
func (p *policy) key() string {
	norm := func(as []attribute) string {
		ss := make([]string, len(as))
		for i, a := range as {
			ss[i] = a.Name + "=" + a.Value
		}
		sort.Strings(ss)
		return strings.Join(ss, "&")
	}
	return p.Type + "|" + norm(p.Subject) + "|" + norm(p.Resource)
}

func roleName(roleID string) string {
	if i := strings.LastIndexByte(roleID, ':'); i >= 0 {
		return roleID[i+1:]
	}
	return roleID
}

// json follows iampolicymanagementv1.Policy / PolicyTemplateMetaData.
func (p *policy) json(base string) map[string]any {
	attrs := func(as []attribute, op bool) []any {
		out := make([]any, 0, len(as))
		for _, a := range as {
			m := map[string]any{"name": a.Name, "value": a.Value}
			if op {
				o := a.Operator
				if o == "" {
					o = "stringEquals"
				}
				m["operator"] = o
			}
			out = append(out, m)
		}
		return out
	}
	roles := make([]any, 0, len(p.Roles))
	for _, r := range p.Roles {
		roles = append(roles, map[string]any{"role_id": r, "display_name": roleName(r)})
	}
	m := map[string]any{
		"id":                  p.ID,
		"type":                p.Type,
		"subjects":            []any{map[string]any{"attributes": attrs(p.Subject, false)}},
		"roles":               roles,
		"resources":           []any{map[string]any{"attributes": attrs(p.Resource, true)}},
		"href":                base + "/v1/policies/" + p.ID,
		"created_at":          formatTime(p.CreatedAt),
		"created_by_id":       p.CreatedBy,
		"last_modified_at":    formatTime(p.CreatedAt),
		"last_modified_by_id": p.CreatedBy,
		"state":               "active",
	}
	if p.Description != "" {
		m["description"] = p.Description
	}
	return m
}

// validatePolicy checks a create body the way IAM does and returns the
// stored form, or an error code and message for a 400.
func (s *Server) validatePolicy(b *policyBody) (*policy, string, string) {
	bad := func(msg string) (*policy, string, string) { return nil, "invalid_body", msg }
	if b.Type != PolicyAccess && b.Type != PolicyAuthorization {
		return bad("Invalid policy type '" + b.Type + "': must be 'access' or 'authorization'.")
	}
	if len(b.Subjects) != 1 || len(b.Subjects[0].Attributes) == 0 {
		return bad("A policy needs exactly one subject with attributes.")
	}
	if len(b.Resources) != 1 || len(b.Resources[0].Attributes) == 0 {
		return bad("A policy needs exactly one resource with attributes.")
	}
	if len(b.Roles) == 0 {
		return bad("A policy needs at least one role.")
	}
	p := &policy{Type: b.Type, Description: b.Description, Subject: b.Subjects[0].Attributes, Resource: b.Resources[0].Attributes}
	for _, r := range b.Roles {
		if !strings.HasPrefix(r.RoleID, "crn:v1:bluemix:public:") ||
			(!strings.Contains(r.RoleID, ":role:") && !strings.Contains(r.RoleID, ":serviceRole:")) {
			return bad("Invalid role_id '" + r.RoleID + "'.")
		}
		p.Roles = append(p.Roles, r.RoleID)
	}
	for _, a := range append(append([]attribute{}, p.Subject...), p.Resource...) {
		if a.Name == "" || a.Value == "" {
			return bad("Attributes need a name and a value.")
		}
		if a.Operator != "" && a.Operator != "stringEquals" {
			return bad("Operator '" + a.Operator + "' is not supported by the simulated IAM (only stringEquals).")
		}
	}
	if attrValue(p.Resource, "accountId") == "" {
		return bad("The resource must have an accountId attribute.")
	}
	switch p.Type {
	case PolicyAuthorization:
		if attrValue(p.Subject, "accountId") == "" {
			return bad("The subject of an authorization policy must have an accountId attribute.")
		}
		if attrValue(p.Subject, "serviceName") == "" && attrValue(p.Subject, "resourceGroupId") == "" {
			return bad("The subject of an authorization policy must have a serviceName or resourceGroupId attribute.")
		}
		if attrValue(p.Resource, "serviceName") == "" {
			return bad("The resource of an authorization policy must have a serviceName attribute.")
		}
		for _, r := range p.Roles {
			if !strings.Contains(r, ":serviceRole:") {
				return bad("Authorization policies take service roles only, not '" + r + "'.")
			}
		}
	case PolicyAccess:
		if attrValue(p.Subject, "iam_id") == "" && attrValue(p.Subject, "access_group_id") == "" {
			return bad("The subject of an access policy must have an iam_id or access_group_id attribute.")
		}
	}
	return p, "", ""
}

func (s *Server) createPolicy(w http.ResponseWriter, r *http.Request, caller simcore.Principal) {
	var b policyBody
	if err := decodeBody(r, &b); err != nil {
		writeAPIError(w, r, http.StatusBadRequest, "invalid_body", "", err.Error())
		return
	}
	p, code, msg := s.validatePolicy(&b)
	if p == nil {
		writeAPIError(w, r, http.StatusBadRequest, code, "", msg)
		return
	}
	acct := attrValue(p.Resource, "accountId")
	if sa := attrValue(p.Subject, "accountId"); (sa != "" && sa != acct) || acct != s.cfg.AccountID ||
		caller.AccountID != acct || !s.canManage(caller, ServiceIAMAccess) {
		writeAPIError(w, r, http.StatusForbidden, "insufficent_permissions", "",
			"You are not allowed to create policies in account "+acct+".")
		return
	}
	s.mu.Lock()
	for _, q := range s.policies {
		if q.key() == p.key() {
			details := map[string]any{"conflicts_with": map[string]any{"etag": q.ETag, "policy": q.ID}}
			s.mu.Unlock()
			writeAPIErrorDetails(w, r, http.StatusConflict, "policy_conflict_error", "",
				"Failed to create policy: a policy with the same subject and resource already exists ("+q.ID+").", details)
			return
		}
	}
	s.policySeq++
	p.ID = s.uuid()
	p.CreatedAt = s.now()
	p.CreatedBy = caller.IAMID
	sum := sha256.Sum256([]byte(p.key() + strings.Join(p.Roles, ",")))
	p.ETag = fmt.Sprintf("1-%x", sum[:16])
	s.policies[p.ID] = p
	out := p.json(baseURL(r))
	s.mu.Unlock()
	ev := s.iamEvent("iam-am.policy.create", caller, r, "crn:v1:bluemix:public:iam-am::a/"+acct+"::policy:"+p.ID, p.ID, http.StatusCreated)
	ev.RequestData = map[string]any{"type": p.Type, "roles": p.Roles}
	s.record(ev)
	w.Header().Set("ETag", p.ETag)
	writeJSON(w, http.StatusCreated, out)
}

func (s *Server) listPolicies(w http.ResponseWriter, r *http.Request, caller simcore.Principal) {
	q := r.URL.Query()
	acct := q.Get("account_id")
	if acct == "" {
		writeAPIError(w, r, http.StatusBadRequest, "invalid_parameter", "", "The account_id query parameter is required.")
		return
	}
	if acct != s.cfg.AccountID || caller.AccountID != acct {
		writeAPIError(w, r, http.StatusForbidden, "insufficent_permissions", "", "You are not allowed to list policies in account "+acct+".")
		return
	}
	typ, iamID, svc, svcType, state := q.Get("type"), q.Get("iam_id"), q.Get("service_name"), q.Get("service_type"), q.Get("state")
	s.mu.Lock()
	var list []*policy
	for _, p := range s.policies {
		if typ != "" && p.Type != typ {
			continue
		}
		if iamID != "" && attrValue(p.Subject, "iam_id") != iamID {
			continue
		}
		if svc != "" && attrValue(p.Resource, "serviceName") != svc {
			continue
		}
		if svcType != "" && attrValue(p.Resource, "serviceType") != svcType {
			continue
		}
		if state != "" && state != "active" {
			continue
		}
		list = append(list, p)
	}
	sort.Slice(list, func(i, j int) bool {
		if !list[i].CreatedAt.Equal(list[j].CreatedAt) {
			return list[i].CreatedAt.Before(list[j].CreatedAt)
		}
		return list[i].ID < list[j].ID
	})
	out := make([]any, 0, len(list))
	for _, p := range list {
		out = append(out, p.json(baseURL(r)))
	}
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, map[string]any{"policies": out})
}

func (s *Server) getPolicy(w http.ResponseWriter, r *http.Request, caller simcore.Principal) {
	s.mu.Lock()
	p, ok := s.policies[r.PathValue("id")]
	var out map[string]any
	if ok {
		out = p.json(baseURL(r))
	}
	s.mu.Unlock()
	if !ok || caller.AccountID != s.cfg.AccountID {
		writeAPIError(w, r, http.StatusNotFound, "policy_not_found", "", "Policy "+r.PathValue("id")+" was not found.")
		return
	}
	w.Header().Set("ETag", p.ETag)
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) deletePolicy(w http.ResponseWriter, r *http.Request, caller simcore.Principal) {
	if !s.canManage(caller, ServiceIAMAccess) {
		writeAPIError(w, r, http.StatusForbidden, "insufficent_permissions", "", "You are not allowed to delete policies.")
		return
	}
	s.mu.Lock()
	p, ok := s.policies[r.PathValue("id")]
	if ok {
		delete(s.policies, p.ID)
	}
	s.mu.Unlock()
	if !ok {
		writeAPIError(w, r, http.StatusNotFound, "policy_not_found", "", "Policy "+r.PathValue("id")+" was not found.")
		return
	}
	s.record(s.iamEvent("iam-am.policy.delete", caller, r, "crn:v1:bluemix:public:iam-am::a/"+s.cfg.AccountID+"::policy:"+p.ID, p.ID, http.StatusNoContent))
	w.WriteHeader(http.StatusNoContent)
}

// AddAuthorization creates an authorization (service-to-service) policy
// directly, as if with the API, and returns its id. targetInstance "" means
// every instance of targetService.
func (s *Server) AddAuthorization(sourceService, targetService, targetInstance string) string {
	p := &policy{
		Type:     PolicyAuthorization,
		Subject:  []attribute{{Name: "accountId", Value: s.cfg.AccountID}, {Name: "serviceName", Value: sourceService}},
		Resource: []attribute{{Name: "accountId", Value: s.cfg.AccountID}, {Name: "serviceName", Value: targetService}},
		Roles:    []string{RoleReader},
	}
	if targetInstance != "" {
		p.Resource = append(p.Resource, attribute{Name: "serviceInstance", Value: targetInstance})
	}
	return s.addPolicy(p)
}

// AddAccess creates an access policy giving iamID role on serviceName
// (and serviceInstance when non-empty) directly, and returns its id.
func (s *Server) AddAccess(iamID, serviceName, serviceInstance, role string) string {
	p := &policy{
		Type:     PolicyAccess,
		Subject:  []attribute{{Name: "iam_id", Value: iamID}},
		Resource: []attribute{{Name: "accountId", Value: s.cfg.AccountID}, {Name: "serviceName", Value: serviceName}},
		Roles:    []string{role},
	}
	if serviceInstance != "" {
		p.Resource = append(p.Resource, attribute{Name: "serviceInstance", Value: serviceInstance})
	}
	return s.addPolicy(p)
}

func (s *Server) addPolicy(p *policy) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, q := range s.policies {
		if q.key() == p.key() {
			return q.ID
		}
	}
	p.ID = s.uuid()
	p.CreatedAt = s.now()
	p.CreatedBy = s.cfg.Owner.IAMID
	p.ETag = "1-" + s.hex(16)
	s.policies[p.ID] = p
	return p.ID
}

// RemovePolicy deletes a policy by id; it reports whether it existed.
func (s *Server) RemovePolicy(id string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.policies[id]
	delete(s.policies, id)
	return ok
}

// HasAuthorization reports whether an authorization policy in accountID
// lets sourceService reach targetService (scoped to targetInstance when
// the policy names one; targetInstance "" matches any scope).
func (s *Server) HasAuthorization(accountID, sourceService, targetService, targetInstance string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if accountID != s.cfg.AccountID {
		return false
	}
	for _, p := range s.policies {
		if p.Type != PolicyAuthorization ||
			attrValue(p.Subject, "serviceName") != sourceService ||
			attrValue(p.Resource, "serviceName") != targetService ||
			attrValue(p.Resource, "accountId") != accountID {
			continue
		}
		if inst := attrValue(p.Resource, "serviceInstance"); inst != "" && targetInstance != "" && inst != targetInstance {
			continue
		}
		return true
	}
	return false
}

// HasAccess reports whether iamID holds any role on serviceName (and on
// serviceInstance when both it and the policy name one). The account owner
// has access to everything in the account. A policy whose resource names
// only the account (no serviceName) covers every service. Policies scoped
// further (resourceType, resource) count as access to the instance; use
// HasResourceAccess to honour that scope. Roles are not told apart.
func (s *Server) HasAccess(accountID, iamID, serviceName, serviceInstance string) bool {
	return s.HasResourceAccess(accountID, iamID, serviceName, serviceInstance, "", "")
}

// HasResourceAccess is HasAccess with the policy's resourceType and resource
// attributes honoured: a policy scoped to a resource (a bucket, a key)
// grants access to that resource only. Empty resourceType and resource ask
// about the instance as a whole, and any policy on the instance answers yes.
func (s *Server) HasResourceAccess(accountID, iamID, serviceName, serviceInstance, resourceType, resource string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.hasResourceAccessLocked(accountID, iamID, serviceName, serviceInstance, resourceType, resource)
}

func (s *Server) hasAccessLocked(accountID, iamID, serviceName, serviceInstance string) bool {
	return s.hasResourceAccessLocked(accountID, iamID, serviceName, serviceInstance, "", "")
}

func (s *Server) hasResourceAccessLocked(accountID, iamID, serviceName, serviceInstance, resourceType, resource string) bool {
	if accountID != s.cfg.AccountID {
		return false
	}
	if s.owners[iamID] {
		return true
	}
	for _, p := range s.policies {
		if p.Type != PolicyAccess || attrValue(p.Subject, "iam_id") != iamID || attrValue(p.Resource, "accountId") != accountID {
			continue
		}
		if d := s.cfg.PolicyDelay; d > 0 && s.now().Before(p.CreatedAt.Add(d)) {
			continue // not yet effective (Config.PolicyDelay)
		}
		if svc := attrValue(p.Resource, "serviceName"); svc != "" && svc != serviceName {
			continue
		}
		if inst := attrValue(p.Resource, "serviceInstance"); inst != "" && serviceInstance != "" && inst != serviceInstance {
			continue
		}
		if resourceType != "" || resource != "" {
			if rt := attrValue(p.Resource, "resourceType"); rt != "" && rt != resourceType {
				continue
			}
			if rs := attrValue(p.Resource, "resource"); rs != "" && rs != resource {
				continue
			}
		}
		return true
	}
	return false
}
