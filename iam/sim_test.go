package iam_test

// Acceptance tests: platform-services-go-sdk (iamidentityv1,
// iampolicymanagementv1), go-sdk-core's token exchange and
// keyprotect-go-client against the local cloud simulator.

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/e2eimage/e2eimage/crn"

	"github.com/IBM/go-sdk-core/v5/core"
	kp "github.com/IBM/keyprotect-go-client"
	"github.com/IBM/platform-services-go-sdk/iamidentityv1"
	"github.com/IBM/platform-services-go-sdk/iampolicymanagementv1"

	"github.com/e2eimage/e2eimage/iam"
	"github.com/e2eimage/e2eimage/internal/cloudsim"
	"github.com/e2eimage/e2eimage/internal/faults"
	"github.com/e2eimage/e2eimage/kms"
	"github.com/e2eimage/e2eimage/secret"
)

type env struct {
	sim      *cloudsim.Sim
	auth     *iam.Authenticator
	client   *iam.Client
	identity *iamidentityv1.IamIdentityV1
	policy   *iampolicymanagementv1.IamPolicyManagementV1
}

func start(t *testing.T, opts cloudsim.Options, clientOpts ...iam.Option) *env {
	t.Helper()
	sim, err := cloudsim.Start(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sim.Close() })
	auth, err := iam.NewAuthenticator(secret.NewString(sim.Account.APIKey), iam.WithURL(sim.URLs.IAM))
	if err != nil {
		t.Fatal(err)
	}
	c, err := iam.NewClient(auth, sim.Account.AccountID, append([]iam.Option{
		iam.WithIdentityURL(sim.URLs.IAMIdentity), iam.WithPolicyURL(sim.URLs.IAMPolicy), iam.WithRetries(2, 10*time.Millisecond)}, clientOpts...)...)
	if err != nil {
		t.Fatal(err)
	}
	// Plain SDK clients for counting and breaking things, as an operator would.
	identity, err := iamidentityv1.NewIamIdentityV1(&iamidentityv1.IamIdentityV1Options{URL: sim.URLs.IAMIdentity, Authenticator: auth})
	if err != nil {
		t.Fatal(err)
	}
	policy, err := iampolicymanagementv1.NewIamPolicyManagementV1(&iampolicymanagementv1.IamPolicyManagementV1Options{URL: sim.URLs.IAMPolicy, Authenticator: auth})
	if err != nil {
		t.Fatal(err)
	}
	return &env{sim: sim, auth: auth, client: c, identity: identity, policy: policy}
}

func (e *env) crn(t *testing.T, hpcs bool) crn.Key {
	s := e.sim.Account.RootKeyCRN
	if hpcs {
		s = e.sim.Account.HPCSRootKeyCRN
	}
	c, err := crn.ParseKey(s)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func (e *env) plan(t *testing.T, hpcs bool) iam.Plan {
	return iam.Plan{
		Key:                 e.crn(t, hpcs),
		ServiceID:           iam.ServiceIDSpec{Name: "e2e-image-import", Description: "imports encrypted images"},
		COSInstanceID:       e.sim.Account.COSInstanceID,
		Bucket:              e.sim.Account.Bucket,
		COSKeyAuthorization: true,
	}
}

// counts is what the listing APIs show.
type counts struct {
	authorizations, accessPolicies, serviceIDs, apiKeys int
}

func (e *env) count(t *testing.T, name string) counts {
	t.Helper()
	ctx := context.Background()
	list := func(typ string) []iampolicymanagementv1.PolicyTemplateMetaData {
		pols, _, err := e.policy.ListPoliciesWithContext(ctx, &iampolicymanagementv1.ListPoliciesOptions{
			AccountID: core.StringPtr(e.sim.Account.AccountID), Type: core.StringPtr(typ)})
		if err != nil {
			t.Fatal(err)
		}
		return pols.Policies
	}
	var c counts
	c.authorizations = len(list("authorization"))
	c.accessPolicies = len(list("access"))
	sids, _, err := e.identity.ListServiceIdsWithContext(ctx, &iamidentityv1.ListServiceIdsOptions{
		AccountID: core.StringPtr(e.sim.Account.AccountID), Name: core.StringPtr(name)})
	if err != nil {
		t.Fatal(err)
	}
	c.serviceIDs = len(sids.Serviceids)
	for _, s := range sids.Serviceids {
		keys, _, err := e.identity.ListAPIKeysWithContext(ctx, &iamidentityv1.ListAPIKeysOptions{
			AccountID: core.StringPtr(e.sim.Account.AccountID), IamID: s.IamID, Pagesize: core.Int64Ptr(100)})
		if err != nil {
			t.Fatal(err)
		}
		c.apiKeys += len(keys.Apikeys)
	}
	return c
}

func TestSimSetupIsIdempotent(t *testing.T) {
	t.Parallel()
	for _, hpcs := range []bool{false, true} {
		name := map[bool]string{false: "KeyProtect", true: "HPCS"}[hpcs]
		t.Run(name, func(t *testing.T) {
			e := start(t, cloudsim.Options{Seed: 3})
			ctx := context.Background()
			plan := e.plan(t, hpcs)
			if got := e.count(t, plan.ServiceID.Name); got != (counts{}) {
				t.Fatalf("a fresh account already has %+v", got)
			}

			first, err := e.client.Setup(ctx, plan)
			if err != nil {
				t.Fatal(err)
			}
			want := counts{authorizations: 2, accessPolicies: 2, serviceIDs: 1, apiKeys: 1}
			if got := e.count(t, plan.ServiceID.Name); got != want {
				t.Fatalf("after the first run: %+v, want %+v", got, want)
			}
			if len(first.Created()) != 6 || first.ServiceID.APIKey.Empty() || !first.ServiceID.APIKeyCreated {
				t.Fatalf("first run created %v, key created %v", first.Created(), first.ServiceID.APIKeyCreated)
			}

			// Second run, with the API key kept from the first: nothing new.
			plan.ServiceID.KnownAPIKey = first.ServiceID.APIKey
			second, err := e.client.Setup(ctx, plan)
			if err != nil {
				t.Fatal(err)
			}
			if got := e.count(t, plan.ServiceID.Name); got != want {
				t.Fatalf("after the second run: %+v, want %+v", got, want)
			}
			if c := second.Created(); len(c) != 0 {
				t.Errorf("second run created %v", c)
			}
			if second.ServiceID.APIKey.Reveal() != first.ServiceID.APIKey.Reveal() || second.ServiceID.Note != "" {
				t.Errorf("the known key was not reused (note %q)", second.ServiceID.Note)
			}
			if second.BlockStorageAuthorization.ID != first.BlockStorageAuthorization.ID || second.COSPolicy.ID != first.COSPolicy.ID ||
				second.KeyPolicy.ID != first.KeyPolicy.ID || second.ServiceID.ID != first.ServiceID.ID {
				t.Errorf("the second run found other objects: %+v vs %+v", second, first)
			}

			// Third run without the key: IAM cannot give the old key back,
			// so a new one is made, and said so.
			plan.ServiceID.KnownAPIKey = nil
			third, err := e.client.Setup(ctx, plan)
			if err != nil {
				t.Fatal(err)
			}
			want.apiKeys = 2
			if got := e.count(t, plan.ServiceID.Name); got != want {
				t.Fatalf("after the third run: %+v, want %+v", got, want)
			}
			if !third.ServiceID.APIKeyCreated || !strings.Contains(third.ServiceID.Note, "already had 1 API key(s)") {
				t.Errorf("third run: created %v, note %q", third.ServiceID.APIKeyCreated, third.ServiceID.Note)
			}

			// The service ID's key works, and its policies let it use the key.
			svc, err := iam.NewAuthenticator(third.ServiceID.APIKey, iam.WithURL(e.sim.URLs.IAM))
			if err != nil {
				t.Fatal(err)
			}
			url := e.sim.URLs.KMS
			if hpcs {
				url = e.sim.URLs.HPCS
			}
			ks, err := kms.New(plan.Key.String(), svc, kms.WithURL(url))
			if err != nil {
				t.Fatal(err)
			}
			if _, err := ks.Check(ctx); err != nil {
				t.Errorf("the service ID cannot use the key: %v", err)
			}
		})
	}
}

func TestSimSeededAuthorizationIsFound(t *testing.T) {
	t.Parallel()
	e := start(t, cloudsim.Options{Seed: 4, SeedAuthorizations: true})
	before := e.count(t, "none")
	res, err := e.client.EnsureAuthorization(context.Background(), iam.BlockStorageAuthorization(e.crn(t, false)))
	if err != nil {
		t.Fatal(err)
	}
	if res.Created || res.ID == "" {
		t.Errorf("the seeded account-wide authorization was not found: %+v", res)
	}
	if after := e.count(t, "none"); after != before {
		t.Errorf("counts changed: %+v -> %+v", before, after)
	}
}

// A policy another process creates between our look-up and our create
// comes back as 409; that counts as found.
func TestSimConflictCountsAsFound(t *testing.T) {
	t.Parallel()
	e := start(t, cloudsim.Options{Seed: 5})
	ctx := context.Background()
	a := iam.BlockStorageAuthorization(e.crn(t, false))
	first, err := e.client.EnsureAuthorization(ctx, a)
	if err != nil || !first.Created {
		t.Fatalf("%+v %v", first, err)
	}
	// Hide it from the next look-up only.
	id := e.sim.Faults.Add(faults.Rule{Service: cloudsim.ServiceIAMPolicy, Method: http.MethodGet, Kind: faults.Status,
		Status: http.StatusOK, Body: `{"policies":[]}`, Count: 1})
	second, err := e.client.EnsureAuthorization(ctx, a)
	if err != nil {
		t.Fatal(err)
	}
	if e.sim.Faults.Hits(id) != 1 {
		t.Fatalf("the look-up was not hidden")
	}
	if second.Created || second.ID != first.ID {
		t.Errorf("409 not treated as found: %+v (first %+v)", second, first)
	}
	if got := e.count(t, "none").authorizations; got != 1 {
		t.Errorf("%d authorizations", got)
	}
}

func TestSimConflictWithoutRoleIsReported(t *testing.T) {
	t.Parallel()
	e := start(t, cloudsim.Options{Seed: 6})
	ctx := context.Background()
	plan := e.plan(t, false)
	res, err := e.client.Setup(ctx, plan) // Reader on COS
	if err != nil {
		t.Fatal(err)
	}
	plan.Export = true // needs Writer: a second policy on the same resource is refused
	plan.ServiceID.KnownAPIKey = res.ServiceID.APIKey
	_, err = e.client.Setup(ctx, plan)
	if !errors.Is(err, iam.ErrPolicyConflict) || !strings.Contains(err.Error(), res.COSPolicy.ID) {
		t.Fatalf("%v, want ErrPolicyConflict naming policy %s", err, res.COSPolicy.ID)
	}
}

func TestSimForbidden(t *testing.T) {
	t.Parallel()
	e := start(t, cloudsim.Options{Seed: 8})
	ctx := context.Background()
	res, err := e.client.Setup(ctx, e.plan(t, false))
	if err != nil {
		t.Fatal(err)
	}
	// The import service ID may not manage IAM.
	svc, _ := iam.NewAuthenticator(res.ServiceID.APIKey, iam.WithURL(e.sim.URLs.IAM))
	c, err := iam.NewClient(svc, e.sim.Account.AccountID, iam.WithIdentityURL(e.sim.URLs.IAMIdentity), iam.WithPolicyURL(e.sim.URLs.IAMPolicy))
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.EnsureServiceID(ctx, iam.ServiceIDSpec{Name: "another"})
	var ae *iam.APIError
	if !errors.Is(err, iam.ErrForbidden) || !errors.As(err, &ae) || ae.Status != http.StatusForbidden {
		t.Errorf("%v: want ErrForbidden", err)
	}
}

// TestSimPreflight breaks one preparation step at a time and checks that the
// report flags exactly the checks that depend on it.
func TestSimPreflight(t *testing.T) {
	const (
		keyCheck    = "root key"
		bsAuth      = "authorization server-protect -> kms"
		cosAuth     = "authorization cloud-object-storage -> kms"
		sidCheck    = "service ID e2e-image-import"
		cosPolicy   = "access policy e2e-image-import -> cloud-object-storage"
		keyPolicy   = "access policy e2e-image-import -> kms"
		bucketCheck = "bucket"
	)
	type state struct {
		e     *env
		res   *iam.SetupResult
		admin *kp.Client
		ks    *kms.Client
	}
	deletePolicy := func(t *testing.T, s *state, id string) {
		if _, err := s.e.policy.DeletePolicy(&iampolicymanagementv1.DeletePolicyOptions{PolicyID: &id}); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		name   string
		break_ func(t *testing.T, s *state)
		bucket bool // the caller's bucket check fails
		want   []string
	}{
		{"everything in place", func(*testing.T, *state) {}, false, nil},
		{"key disabled", func(t *testing.T, s *state) {
			if err := s.admin.DisableKey(context.Background(), s.ks.CRN().KeyID); err != nil {
				t.Fatal(err)
			}
		}, false, []string{keyCheck}},
		{"key deleted", func(t *testing.T, s *state) {
			if _, err := s.admin.DeleteKey(context.Background(), s.ks.CRN().KeyID, kp.ReturnMinimal); err != nil {
				t.Fatal(err)
			}
		}, false, []string{keyCheck}},
		{"block storage authorization missing", func(t *testing.T, s *state) {
			deletePolicy(t, s, s.res.BlockStorageAuthorization.ID)
		}, false, []string{bsAuth}},
		{"COS authorization missing", func(t *testing.T, s *state) {
			deletePolicy(t, s, s.res.COSAuthorization.ID)
		}, false, []string{cosAuth}},
		{"service ID missing", func(t *testing.T, s *state) {
			if _, err := s.e.identity.DeleteServiceID(&iamidentityv1.DeleteServiceIDOptions{ID: &s.res.ServiceID.ID}); err != nil {
				t.Fatal(err)
			}
		}, false, []string{sidCheck, cosPolicy, keyPolicy}},
		{"service ID without API key", func(t *testing.T, s *state) {
			if _, err := s.e.identity.DeleteAPIKey(&iamidentityv1.DeleteAPIKeyOptions{ID: &s.res.ServiceID.APIKeyID}); err != nil {
				t.Fatal(err)
			}
		}, false, []string{sidCheck}},
		{"COS access policy missing", func(t *testing.T, s *state) {
			deletePolicy(t, s, s.res.COSPolicy.ID)
		}, false, []string{cosPolicy}},
		{"key access policy missing", func(t *testing.T, s *state) {
			deletePolicy(t, s, s.res.KeyPolicy.ID)
		}, false, []string{keyPolicy}},
		{"bucket not regional", func(*testing.T, *state) {}, true, []string{bucketCheck}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := start(t, cloudsim.Options{Seed: 9})
			ctx := context.Background()
			plan := e.plan(t, false)
			res, err := e.client.Setup(ctx, plan)
			if err != nil {
				t.Fatal(err)
			}
			auth := e.auth
			ks, err := kms.New(plan.Key.String(), auth, kms.WithURL(e.sim.URLs.KMS))
			if err != nil {
				t.Fatal(err)
			}
			admin, err := kp.New(kp.ClientConfig{BaseURL: e.sim.URLs.KMS, APIKey: e.sim.Account.APIKey,
				TokenURL: e.sim.URLs.TokenURL(), InstanceID: e.sim.Account.KMSInstanceID}, kp.DefaultTransport())
			if err != nil {
				t.Fatal(err)
			}
			tc.break_(t, &state{e: e, res: res, admin: admin, ks: ks})

			bucket := iam.FuncCheck(bucketCheck, func(context.Context) (string, error) {
				if tc.bucket {
					return "bucket is Cross Region (us-standard)", errors.New("not regional")
				}
				return "Regional, us-south", nil
			}, "use a Regional bucket in the key's region")
			report := iam.Preflight(ctx, append(e.client.Checks(plan, iam.KeyCheck(func(ctx context.Context) (string, string, error) { return kms.CheckKey(ctx, ks) })), bucket)...)
			if testing.Verbose() {
				t.Logf("\n%s", report)
			}

			if len(report.Results) != 7 {
				t.Fatalf("%d results:\n%s", len(report.Results), report)
			}
			var failed []string
			for _, r := range report.Failed() {
				failed = append(failed, r.Name)
				if r.Fix == "" || r.Detail == "" {
					t.Errorf("%s: failure without detail or fix: %+v", r.Name, r)
				}
			}
			if !slices.Equal(failed, tc.want) {
				t.Errorf("failed checks %q, want %q\n%s", failed, tc.want, report)
			}
			if report.OK() != (len(tc.want) == 0) || (report.Err() == nil) != (len(tc.want) == 0) {
				t.Errorf("OK %v, Err %v", report.OK(), report.Err())
			}
			if err := report.Err(); err != nil {
				if !errors.Is(err, iam.ErrPreflight) {
					t.Errorf("Err does not match ErrPreflight: %v", err)
				}
				for _, w := range tc.want {
					if !strings.Contains(err.Error(), w) || !strings.Contains(report.String(), "MISSING  "+w) {
						t.Errorf("%q is not named in the error or the table:\n%v\n%s", w, err, report)
					}
				}
			}
			if tc.name == "key disabled" {
				if r, _ := report.Result(keyCheck); !errors.Is(r.Err, kms.ErrKeyNotActive) || !strings.Contains(r.Fix, "enable the key") {
					t.Errorf("key check: %+v", r)
				}
			}
		})
	}
}

func TestPreflightStopsWhenContextDone(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	ran := 0
	checks := []iam.Check{
		{Name: "a", Run: func(context.Context) iam.CheckResult { ran++; cancel(); return iam.CheckResult{OK: true} }},
		{Name: "b", Run: func(context.Context) iam.CheckResult { ran++; return iam.CheckResult{OK: true} }},
	}
	r := iam.Preflight(ctx, checks...)
	if ran != 1 || r.Results[0].Name != "a" || !r.Results[0].OK || r.Results[1].OK || !errors.Is(r.Results[1].Err, context.Canceled) {
		t.Errorf("ran %d: %+v", ran, r.Results)
	}
}

// TestSimNoSecretsInLogsOrErrors runs set-up and failure paths with debug
// logging and searches logs and errors for API keys and tokens.
func TestSimNoSecretsInLogsOrErrors(t *testing.T) {
	t.Parallel()
	var logs bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	e := start(t, cloudsim.Options{Seed: 10}, iam.WithLogger(log))
	ctx := context.Background()
	var errs []error
	plan := e.plan(t, true)
	res, err := e.client.Setup(ctx, plan)
	if err != nil {
		t.Fatal(err)
	}
	plan.ServiceID.KnownAPIKey = secret.NewString("not-the-key-" + strings.Repeat("x", 30))
	res2, err := e.client.Setup(ctx, plan) // the known key fails: a new key, with a note
	if err != nil {
		t.Fatal(err)
	}
	plan.Export = true
	_, err = e.client.Setup(ctx, plan) // conflict
	errs = append(errs, err)
	bad, _ := iam.NewAuthenticator(secret.NewString(e.sim.Account.APIKey+"y"), iam.WithURL(e.sim.URLs.IAM))
	_, err = bad.AccessToken(ctx)
	errs = append(errs, err)
	svc, _ := iam.NewAuthenticator(res.ServiceID.APIKey, iam.WithURL(e.sim.URLs.IAM))
	c, _ := iam.NewClient(svc, e.sim.Account.AccountID, iam.WithIdentityURL(e.sim.URLs.IAMIdentity),
		iam.WithPolicyURL(e.sim.URLs.IAMPolicy), iam.WithLogger(log))
	_, err = c.EnsureServiceID(ctx, iam.ServiceIDSpec{Name: "x"})
	errs = append(errs, err)
	_, err = c.EnsureAuthorization(ctx, iam.Authorization{Source: iam.ServiceCOS, Target: iam.ServiceKeyProtect, TargetInstance: e.sim.Account.KMSInstanceID})
	errs = append(errs, err)
	// A preflight that finds missing pieces: a service ID that does not
	// exist, and a key the service ID may not read.
	plan.ServiceID.Name = "absent"
	ks, _ := kms.New(e.sim.Account.RootKeyCRN, svc, kms.WithURL(e.sim.URLs.KMS))
	report := iam.Preflight(ctx, c.Checks(plan, iam.KeyCheck(func(ctx context.Context) (string, string, error) { return kms.CheckKey(ctx, ks) }))...)
	errs = append(errs, report.Err())
	tok, _ := e.auth.AccessToken(ctx)
	svcTok, _ := svc.AccessToken(ctx)

	var hay strings.Builder
	hay.Write(logs.Bytes())
	hay.WriteString(report.String())
	for i, err := range errs {
		if err == nil {
			t.Fatalf("failure path %d did not fail", i)
		}
		hay.WriteString(err.Error() + "\n")
	}
	if !strings.Contains(hay.String(), "level=DEBUG") && !strings.Contains(hay.String(), "level=INFO") {
		t.Fatal("nothing was logged")
	}
	for name, s := range map[string]string{
		"owner API key": e.sim.Account.APIKey, "service ID key": res.ServiceID.APIKey.Reveal(),
		"second service ID key": res2.ServiceID.APIKey.Reveal(), "owner token": tok.Reveal(), "service token": svcTok.Reveal(),
	} {
		for form, v := range map[string]string{"raw": s, "hex": hex.EncodeToString([]byte(s)), "base64": base64.StdEncoding.EncodeToString([]byte(s))} {
			if strings.Contains(hay.String(), v) {
				t.Errorf("the %s appears (%s) in logs or errors", name, form)
			}
		}
	}
}
