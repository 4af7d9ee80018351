package iam

import (
	"context"
	"errors"
	"fmt"

	"github.com/e2eimage/e2eimage/crn"
)

// Plan is the IAM preparation of the E2E flow for one root key.
//
// Roles: an image import (createFromIcos) reads the encrypted image from the
// bucket and has the key service unwrap its DEK, so the import identity
// needs Reader on the COS instance (or bucket) and Reader on the key
// service instance. An image export (copyToIcos) writes objects into the
// bucket and so needs Writer on COS (Writer includes Reader).
type Plan struct {
	// Key is the root key (required).
	Key crn.Key
	// ServiceID describes the service ID used for the import; an empty Name
	// leaves out the service ID and its policies (the caller's own
	// identity then imports).
	ServiceID ServiceIDSpec
	// COSInstanceID is the GUID of the COS instance that holds the bucket
	// (required with a service ID).
	COSInstanceID string
	// Bucket, when set, narrows the COS policy to that bucket.
	Bucket string
	// Export grants Writer on COS instead of Reader, for image exports.
	Export bool
	// COSKeyAuthorization also authorizes COS to read the key instance,
	// which only buckets encrypted with Key Protect or HPCS need.
	COSKeyAuthorization bool
}

func (p Plan) validate() error {
	if p.Key.KeyID == "" || p.Key.InstanceID == "" {
		return errors.New("iam: the plan needs the root key CRN")
	}
	if p.ServiceID.Name != "" && p.COSInstanceID == "" {
		return errors.New("iam: the plan needs the COS instance GUID to grant the service ID access to the bucket")
	}
	return nil
}

// COSPolicy is the access policy the service ID iamID needs on COS.
func (p Plan) COSPolicy(iamID string) AccessPolicy {
	ap := AccessPolicy{IAMID: iamID, Service: ServiceCOS, Instance: p.COSInstanceID, Role: RoleReader}
	if p.Export {
		ap.Role = RoleWriter
	}
	if p.Bucket != "" {
		ap.ResourceType, ap.Resource = "bucket", p.Bucket
	}
	return ap
}

// KeyPolicy is the access policy the service ID iamID needs on the key
// service instance.
func (p Plan) KeyPolicy(iamID string) AccessPolicy {
	return AccessPolicy{IAMID: iamID, Service: p.Key.Service.String(), Instance: p.Key.InstanceID, Role: RoleReader}
}

// SetupResult is what Setup found or made.
type SetupResult struct {
	// BlockStorageAuthorization is server-protect -> key service.
	BlockStorageAuthorization Result
	// COSAuthorization is cloud-object-storage -> key service; nil unless
	// Plan.COSKeyAuthorization.
	COSAuthorization *Result
	// ServiceID is nil without Plan.ServiceID.Name.
	ServiceID *ServiceIDResult
	// COSPolicy and KeyPolicy are the service ID's access policies; nil
	// without a service ID.
	COSPolicy, KeyPolicy *Result
}

// Created lists what this run created, for a summary.
func (r *SetupResult) Created() []string {
	var out []string
	add := func(what string, res *Result) {
		if res != nil && res.Created {
			out = append(out, what+" "+res.ID)
		}
	}
	add("authorization", &r.BlockStorageAuthorization)
	add("authorization", r.COSAuthorization)
	if r.ServiceID != nil {
		if r.ServiceID.Created {
			out = append(out, "service ID "+r.ServiceID.ID)
		}
		if r.ServiceID.APIKeyCreated {
			out = append(out, "API key "+r.ServiceID.APIKeyID)
		}
	}
	add("access policy", r.COSPolicy)
	add("access policy", r.KeyPolicy)
	return out
}

// Setup makes every IAM object of the plan exist, creating only what is
// missing: running it twice creates nothing the second time (given the
// service ID's API key as ServiceID.KnownAPIKey; see EnsureServiceID).
func (c *Client) Setup(ctx context.Context, plan Plan) (*SetupResult, error) {
	if err := plan.validate(); err != nil {
		return nil, err
	}
	res := &SetupResult{}
	var err error
	if res.BlockStorageAuthorization, err = c.EnsureAuthorization(ctx, BlockStorageAuthorization(plan.Key)); err != nil {
		return res, err
	}
	if plan.COSKeyAuthorization {
		r, err := c.EnsureAuthorization(ctx, COSAuthorization(plan.Key))
		if err != nil {
			return res, err
		}
		res.COSAuthorization = &r
	}
	if plan.ServiceID.Name == "" {
		return res, nil
	}
	if res.ServiceID, err = c.EnsureServiceID(ctx, plan.ServiceID); err != nil {
		return res, err
	}
	cosRes, err := c.EnsureAccessPolicy(ctx, plan.COSPolicy(res.ServiceID.IAMID))
	if err != nil {
		return res, fmt.Errorf("iam: granting the service ID access to COS: %w", err)
	}
	res.COSPolicy = &cosRes
	keyRes, err := c.EnsureAccessPolicy(ctx, plan.KeyPolicy(res.ServiceID.IAMID))
	if err != nil {
		return res, fmt.Errorf("iam: granting the service ID access to the key service: %w", err)
	}
	res.KeyPolicy = &keyRes
	return res, nil
}
