package iam

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"

	"github.com/e2eimage/e2eimage/crn"

	"github.com/IBM/go-sdk-core/v5/core"
	"github.com/IBM/platform-services-go-sdk/iampolicymanagementv1"
)

// Policy types and the attribute operator (../docs/CLOUD.md §3.3).
const (
	policyAuthorization = "authorization"
	policyAccess        = "access"
	opStringEquals      = "stringEquals"
	policyActive        = "active"
	conflictCode        = "policy_conflict_error"
)

// ErrPolicyConflict is returned when a policy for the same subject and
// resource exists but lacks the role asked for; IAM refuses a second one
// (HTTP 409), and this package does not edit existing policies.
var ErrPolicyConflict = errors.New("iam: a policy for this subject and resource exists without the needed role")

// Authorization is a service-to-service authorization policy: Source may
// use Target (in TargetInstance, or every instance when empty) with Role.
type Authorization struct {
	Source         string // source service name, e.g. ServiceBlockStorage
	Target         string // target service name: ServiceKeyProtect or ServiceHPCS
	TargetInstance string // target instance GUID; "" means all instances
	Role           Role   // default RoleReader
}

func (a Authorization) role() Role {
	if a.Role == "" {
		return RoleReader
	}
	return a.Role
}

// String describes the authorization for messages.
func (a Authorization) String() string {
	s := fmt.Sprintf("%s -> %s (%s)", a.Source, a.Target, a.role().Name())
	if a.TargetInstance != "" {
		s += " on instance " + a.TargetInstance
	}
	return s
}

// BlockStorageAuthorization is the authorization the classic E2E flow needs:
// Cloud Block Storage (server-protect) may read the root key's instance, so
// that servers provisioned from the encrypted image can unwrap its DEK
// (../docs/CLOUD.md §3.3; image-templates provision-encrypted-image.md step 3).
func BlockStorageAuthorization(key crn.Key) Authorization {
	return Authorization{Source: ServiceBlockStorage, Target: key.Service.String(), TargetInstance: key.InstanceID, Role: RoleReader}
}

// COSAuthorization lets Cloud Object Storage read the root key's instance.
// Only buckets encrypted with Key Protect or HPCS (SSE-KP) need it; the E2E
// image itself is already encrypted and does not.
func COSAuthorization(key crn.Key) Authorization {
	return Authorization{Source: ServiceCOS, Target: key.Service.String(), TargetInstance: key.InstanceID, Role: RoleReader}
}

// AccessPolicy grants an identity (an IAM ID such as iam-ServiceId-...)
// roles on a service instance, optionally narrowed to one resource.
type AccessPolicy struct {
	IAMID        string // subject
	Service      string // e.g. ServiceCOS, ServiceKeyProtect
	Instance     string // service instance GUID; "" means all instances
	ResourceType string // optional, e.g. "bucket"
	Resource     string // optional, e.g. the bucket name
	Role         Role
}

// String describes the policy for messages.
func (p AccessPolicy) String() string {
	s := fmt.Sprintf("%s on %s", p.Role.Name(), p.Service)
	if p.Instance != "" {
		s += " instance " + p.Instance
	}
	if p.Resource != "" {
		s += " " + p.ResourceType + " " + p.Resource
	}
	return s + " for " + p.IAMID
}

// attrs is a policy's attributes by name.
type attrs map[string]string

func subjectAttrs(p *iampolicymanagementv1.PolicyTemplateMetaData) attrs {
	m := attrs{}
	for _, s := range p.Subjects {
		for _, a := range s.Attributes {
			if a.Name != nil && a.Value != nil {
				m[*a.Name] = *a.Value
			}
		}
	}
	return m
}

func resourceAttrs(p *iampolicymanagementv1.PolicyTemplateMetaData) (attrs, bool) {
	m := attrs{}
	exact := true
	for _, r := range p.Resources {
		for _, a := range r.Attributes {
			if a.Name == nil || a.Value == nil {
				continue
			}
			if a.Operator != nil && *a.Operator != opStringEquals {
				exact = false // wildcards and the like: not judged here
			}
			m[*a.Name] = *a.Value
		}
		if len(r.Tags) > 0 {
			exact = false
		}
	}
	return m, exact
}

func roleIDs(p *iampolicymanagementv1.PolicyTemplateMetaData) []string {
	var out []string
	for _, r := range p.Roles {
		if r.RoleID != nil {
			out = append(out, *r.RoleID)
		}
	}
	return out
}

// grants reports whether resource attributes have covers the wanted scope:
// same account and service, and the same instance/resource or none (a
// broader grant).
func grants(have attrs, account, service, instance, resourceType, resource string) bool {
	if have["accountId"] != account || have["serviceName"] != service {
		return false
	}
	for _, kv := range [][2]string{{"serviceInstance", instance}, {"resourceType", resourceType}, {"resource", resource}} {
		if v, ok := have[kv[0]]; ok && v != kv[1] {
			return false
		}
	}
	for k := range have {
		switch k {
		case "accountId", "serviceName", "serviceInstance", "resourceType", "resource":
		default:
			return false // narrowed by something we do not model (region, resource group, ...)
		}
	}
	return true
}

func (c *Client) listPolicies(ctx context.Context, typ, iamID string) ([]iampolicymanagementv1.PolicyTemplateMetaData, error) {
	opts := &iampolicymanagementv1.ListPoliciesOptions{AccountID: &c.accountID, Type: &typ, State: core.StringPtr(policyActive)}
	if iamID != "" {
		opts.IamID = &iamID
	}
	pager, err := c.policy.NewPoliciesPager(opts)
	if err != nil {
		return nil, fmt.Errorf("iam: listing %s policies: %w", typ, err)
	}
	var all []iampolicymanagementv1.PolicyTemplateMetaData
	for pager.HasNext() {
		page, err := pager.GetNextWithContext(ctx)
		if err != nil {
			var hp *core.HTTPProblem
			status := 0
			if errors.As(err, &hp) && hp.Response != nil {
				status = hp.Response.StatusCode
			}
			return nil, &APIError{Op: "listing " + typ + " policies", Status: status, Err: err}
		}
		all = append(all, page...)
	}
	return all, nil
}

// FindAuthorization returns the ID of an active authorization policy that
// grants a (an exact match or a broader one), or "" when there is none.
func (c *Client) FindAuthorization(ctx context.Context, a Authorization) (string, error) {
	pols, err := c.listPolicies(ctx, policyAuthorization, "")
	if err != nil {
		return "", err
	}
	for i := range pols {
		p := &pols[i]
		if p.State != nil && *p.State != policyActive {
			continue
		}
		sub := subjectAttrs(p)
		if sub["serviceName"] != a.Source || sub["accountId"] != c.accountID {
			continue
		}
		if _, ok := sub["serviceInstance"]; ok {
			continue // limited to one source instance: not what the flow needs
		}
		res, exact := resourceAttrs(p)
		if !exact || !grants(res, c.accountID, a.Target, a.TargetInstance, "", "") || !covers(roleIDs(p), a.role()) {
			continue
		}
		return deref(p.ID), nil
	}
	return "", nil
}

// EnsureAuthorization creates the authorization unless one that grants it
// exists.
func (c *Client) EnsureAuthorization(ctx context.Context, a Authorization) (Result, error) {
	if a.Source == "" || a.Target == "" {
		return Result{}, errors.New("iam: an authorization needs a source and a target service")
	}
	if id, err := c.FindAuthorization(ctx, a); err != nil || id != "" {
		return Result{ID: id}, err
	}
	subject := iampolicymanagementv1.PolicySubject{Attributes: []iampolicymanagementv1.SubjectAttribute{
		{Name: core.StringPtr("accountId"), Value: core.StringPtr(c.accountID)},
		{Name: core.StringPtr("serviceName"), Value: core.StringPtr(a.Source)},
	}}
	resAttrs := []iampolicymanagementv1.ResourceAttribute{
		{Name: core.StringPtr("accountId"), Value: core.StringPtr(c.accountID), Operator: core.StringPtr(opStringEquals)},
		{Name: core.StringPtr("serviceName"), Value: core.StringPtr(a.Target), Operator: core.StringPtr(opStringEquals)},
	}
	if a.TargetInstance != "" {
		resAttrs = append(resAttrs, iampolicymanagementv1.ResourceAttribute{
			Name: core.StringPtr("serviceInstance"), Value: core.StringPtr(a.TargetInstance), Operator: core.StringPtr(opStringEquals)})
	}
	opts := c.policy.NewCreatePolicyOptions(policyAuthorization,
		[]iampolicymanagementv1.PolicySubject{subject},
		[]iampolicymanagementv1.PolicyRole{{RoleID: core.StringPtr(string(a.role()))}},
		[]iampolicymanagementv1.PolicyResource{{Attributes: resAttrs}})
	opts.SetDescription("e2eimage: " + a.String())
	return c.createPolicy(ctx, "creating authorization "+a.String(), opts, func() (string, error) { return c.FindAuthorization(ctx, a) })
}

// createPolicy creates a policy; a 409 conflict counts as found when the
// conflicting policy grants what was asked (refind), and is
// ErrPolicyConflict otherwise.
func (c *Client) createPolicy(ctx context.Context, op string, opts *iampolicymanagementv1.CreatePolicyOptions, refind func() (string, error)) (Result, error) {
	pol, resp, err := c.policy.CreatePolicyWithContext(ctx, opts)
	if err == nil {
		id := deref(pol.ID)
		c.log.LogAttrs(ctx, slog.LevelInfo, "iam: created policy", slog.String("what", op), slog.String("id", id))
		return Result{ID: id, Created: true}, nil
	}
	if statusOf(resp) != http.StatusConflict {
		return Result{}, apiError(op, resp, err)
	}
	id, ferr := refind()
	if ferr != nil {
		return Result{}, ferr
	}
	if id != "" {
		c.log.LogAttrs(ctx, slog.LevelDebug, "iam: policy already exists (409)", slog.String("what", op), slog.String("id", id))
		return Result{ID: id}, nil
	}
	other := conflictingPolicy(resp)
	return Result{}, fmt.Errorf("%w: %s: policy %s has the same subject and resource; add the role to it: %w",
		ErrPolicyConflict, op, other, apiError(op, resp, err))
}

// conflictingPolicy reads errors[0].details.conflicts_with.policy from a 409
// answer.
func conflictingPolicy(resp *core.DetailedResponse) string {
	if resp == nil {
		return "(unknown)"
	}
	m, ok := resp.Result.(map[string]any)
	if !ok {
		return "(unknown)"
	}
	errs, _ := m["errors"].([]any)
	for _, e := range errs {
		em, _ := e.(map[string]any)
		if code, _ := em["code"].(string); code != conflictCode {
			continue
		}
		d, _ := em["details"].(map[string]any)
		cw, _ := d["conflicts_with"].(map[string]any)
		if id, _ := cw["policy"].(string); id != "" {
			return id
		}
	}
	return "(unknown)"
}

// FindAccessPolicy returns the ID of an active access policy that grants p
// (exactly or more broadly), or "" when there is none.
func (c *Client) FindAccessPolicy(ctx context.Context, p AccessPolicy) (string, error) {
	pols, err := c.listPolicies(ctx, policyAccess, p.IAMID)
	if err != nil {
		return "", err
	}
	for i := range pols {
		q := &pols[i]
		if q.State != nil && *q.State != policyActive {
			continue
		}
		if subjectAttrs(q)["iam_id"] != p.IAMID {
			continue
		}
		res, exact := resourceAttrs(q)
		if !exact || !grants(res, c.accountID, p.Service, p.Instance, p.ResourceType, p.Resource) || !covers(roleIDs(q), p.Role) {
			continue
		}
		return deref(q.ID), nil
	}
	return "", nil
}

// EnsureAccessPolicy creates the access policy unless one that grants it
// exists.
func (c *Client) EnsureAccessPolicy(ctx context.Context, p AccessPolicy) (Result, error) {
	if p.IAMID == "" || p.Service == "" || p.Role == "" {
		return Result{}, errors.New("iam: an access policy needs an IAM ID, a service and a role")
	}
	if (p.ResourceType == "") != (p.Resource == "") {
		return Result{}, errors.New("iam: an access policy's resource type and resource go together")
	}
	if id, err := c.FindAccessPolicy(ctx, p); err != nil || id != "" {
		return Result{ID: id}, err
	}
	subject := iampolicymanagementv1.PolicySubject{Attributes: []iampolicymanagementv1.SubjectAttribute{
		{Name: core.StringPtr("iam_id"), Value: core.StringPtr(p.IAMID)},
	}}
	resAttrs := []iampolicymanagementv1.ResourceAttribute{
		{Name: core.StringPtr("accountId"), Value: core.StringPtr(c.accountID), Operator: core.StringPtr(opStringEquals)},
		{Name: core.StringPtr("serviceName"), Value: core.StringPtr(p.Service), Operator: core.StringPtr(opStringEquals)},
	}
	for _, kv := range [][2]string{{"serviceInstance", p.Instance}, {"resourceType", p.ResourceType}, {"resource", p.Resource}} {
		if kv[1] != "" {
			resAttrs = append(resAttrs, iampolicymanagementv1.ResourceAttribute{
				Name: core.StringPtr(kv[0]), Value: core.StringPtr(kv[1]), Operator: core.StringPtr(opStringEquals)})
		}
	}
	opts := c.policy.NewCreatePolicyOptions(policyAccess,
		[]iampolicymanagementv1.PolicySubject{subject},
		[]iampolicymanagementv1.PolicyRole{{RoleID: core.StringPtr(string(p.Role))}},
		[]iampolicymanagementv1.PolicyResource{{Attributes: resAttrs}})
	opts.SetDescription("e2eimage: " + p.String())
	return c.createPolicy(ctx, "creating access policy "+p.String(), opts, func() (string, error) { return c.FindAccessPolicy(ctx, p) })
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}
