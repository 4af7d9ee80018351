// Package iam authenticates to IBM Cloud with an API key and prepares the
// IAM objects that the classic End-to-End (E2E) encrypted image flow needs,
// idempotently, and checks that they are in place before the flow starts.
//
// Authenticator exchanges an API key for access tokens through go-sdk-core's
// IamAuthenticator and caches them; it serves both the key services
// (kms.TokenSource) and the platform SDKs (core.Authenticator). The IAM
// endpoint can be overridden (WithURL), for the private endpoint or a local
// simulator; plain http is accepted only to loopback hosts.
//
// Client, over platform-services-go-sdk's iamidentityv1 and
// iampolicymanagementv1, makes sure these exist, looking before it creates
// and treating an HTTP 409 from a concurrent creator as found:
//
//   - the authorization that lets Cloud Block Storage (server-protect) read
//     the root key's instance (kms or hs-crypto, role Reader), without which
//     servers cannot start from the encrypted image
//     (BlockStorageAuthorization);
//   - optionally, the cloud-object-storage -> key service authorization that
//     buckets encrypted with Key Protect need (COSAuthorization);
//   - a service ID for the import, with an API key returned once as a
//     *secret.String (EnsureServiceID);
//   - that service ID's access policies: Reader on the COS instance (or
//     bucket) for an import, Writer for an export, and Reader on the key
//     service instance (Plan.COSPolicy, Plan.KeyPolicy).
//
// Setup does all of it from a Plan. Preflight runs checks (Client.Checks
// for the IAM side and the key, plus checks supplied by the caller, such as
// the bucket's location) and returns a Report naming each missing step and
// the fix.
//
// Secrets: API keys and tokens are held as *secret.String, never logged and
// never put in error strings.
//
// What this package does NOT do:
//
//   - It does not delete or edit IAM objects: a policy that exists without
//     the needed role is reported (ErrPolicyConflict), not changed, and older
//     API keys of a service ID are left in place.
//   - It does not read API key values back (IAM cannot): an existing service
//     ID gets a new API key unless the caller passes the one it kept.
//   - It does not manage access groups, trusted profiles, v2 policies with
//     conditions, or resource groups, and it does not create service
//     instances (Key Protect, HPCS, COS).
//   - It does not check buckets (see the cos package) or verify token
//     signatures (tokens come straight from IAM over TLS).
package iam
