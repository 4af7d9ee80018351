package kms_test

// Acceptance tests: the official clients (keyprotect-go-client through
// kms.Client, go-sdk-core's IAM token exchange through iam.Authenticator)
// against the local cloud simulator's Key Protect and HPCS instances.

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/e2eimage/e2eimage/crn"

	kp "github.com/IBM/keyprotect-go-client"

	"github.com/e2eimage/e2eimage/iam"
	"github.com/e2eimage/e2eimage/internal/cloudsim"
	"github.com/e2eimage/e2eimage/internal/faults"
	"github.com/e2eimage/e2eimage/kms"
	"github.com/e2eimage/e2eimage/secret"
)

// instance is one simulated key service instance.
type instance struct {
	name     string // subtest name
	fault    string // the simulator's fault service name
	url      string
	crn      string
	instance string
}

func instances(sim *cloudsim.Sim) []instance {
	return []instance{
		{"KeyProtect", cloudsim.ServiceKMS, sim.URLs.KMS, sim.Account.RootKeyCRN, sim.Account.KMSInstanceID},
		{"HPCS", cloudsim.ServiceHPCS, sim.URLs.HPCS, sim.Account.HPCSRootKeyCRN, sim.Account.HPCSInstanceID},
	}
}

func startSim(t *testing.T) *cloudsim.Sim {
	t.Helper()
	sim, err := cloudsim.Start(context.Background(), cloudsim.Options{Seed: 7})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sim.Close() })
	return sim
}

func ownerAuth(t *testing.T, sim *cloudsim.Sim) *iam.Authenticator {
	t.Helper()
	a, err := iam.NewAuthenticator(secret.NewString(sim.Account.APIKey), iam.WithURL(sim.URLs.IAM))
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// fast is a retry budget that keeps tests quick.
var fast = kms.RetryPolicy{MaxAttempts: 3, MinWait: time.Millisecond, MaxWait: 2 * time.Second, AttemptTimeout: 10 * time.Second}

func client(t *testing.T, auth kms.TokenSource, in instance, crn string, opts ...kms.Option) *kms.Client {
	t.Helper()
	c, err := kms.New(crn, auth, append([]kms.Option{kms.WithURL(in.url), kms.WithRetryPolicy(fast)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// admin is a plain keyprotect-go-client for the test's own set-up (create,
// disable, delete, rotate keys), as an operator would use it.
func admin(t *testing.T, sim *cloudsim.Sim, in instance) *kp.Client {
	t.Helper()
	c, err := kp.New(kp.ClientConfig{BaseURL: in.url, APIKey: sim.Account.APIKey, TokenURL: sim.URLs.TokenURL(), InstanceID: in.instance}, kp.DefaultTransport())
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// keyCRN is the CRN of another key in the same instance.
func keyCRN(t *testing.T, base, keyID string) string {
	c, err := crn.ParseKey(base)
	if err != nil {
		t.Fatal(err)
	}
	c.KeyID = keyID
	return c.String()
}

func TestSimRoundTrips(t *testing.T) {
	t.Parallel()
	sim := startSim(t)
	auth := ownerAuth(t, sim)
	ctx := context.Background()
	for _, in := range instances(sim) {
		t.Run(in.name, func(t *testing.T) {
			c := client(t, auth, in, in.crn)
			info, err := c.Check(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if info.Type != kms.RootKey || info.State != kms.StateActive || info.CRN.String() != in.crn || info.KeyVersion == "" {
				t.Errorf("Check: %+v", info)
			}
			for _, size := range []int{secret.DEK256, secret.DEK512} {
				dek, w, err := kms.NewDEK(ctx, c, size)
				if err != nil {
					t.Fatalf("NewDEK(%d): %v", size, err)
				}
				if dek.Len() != size || w.Ciphertext == "" || w.KeyVersion != info.KeyVersion {
					t.Fatalf("NewDEK(%d): %d bytes, %+v", size, dek.Len(), w)
				}
				got, rewrapped, err := c.Unwrap(ctx, w)
				if err != nil {
					t.Fatalf("Unwrap(%d): %v", size, err)
				}
				if !bytes.Equal(got.Bytes(), dek.Bytes()) {
					t.Errorf("Unwrap(%d) returned other bytes", size)
				}
				if rewrapped != nil {
					t.Errorf("Unwrap without rotation returned a rewrapped DEK")
				}
				dek.Zero()
				got.Zero()
			}
			// Generated DEKs are 32 bytes and differ.
			a, _, err := c.GenerateDEK(ctx)
			if err != nil {
				t.Fatal(err)
			}
			b, _, err := c.GenerateDEK(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if a.Len() != 32 || b.Len() != 32 || bytes.Equal(a.Bytes(), b.Bytes()) {
				t.Errorf("generated DEKs: %d and %d bytes, equal=%v", a.Len(), b.Len(), bytes.Equal(a.Bytes(), b.Bytes()))
			}
		})
	}
}

func TestSimTypedErrors(t *testing.T) {
	t.Parallel()
	sim := startSim(t)
	auth := ownerAuth(t, sim)
	ctx := context.Background()
	all := instances(sim)
	for i, in := range all {
		other := all[1-i]
		t.Run(in.name, func(t *testing.T) {
			adm := admin(t, sim, in)
			c := client(t, auth, in, in.crn)
			dek, w, err := kms.NewDEK(ctx, c, secret.DEK512)
			if err != nil {
				t.Fatal(err)
			}
			defer dek.Zero()

			t.Run("disabled key", func(t *testing.T) {
				key, err := adm.CreateRootKey(ctx, "to-disable", nil)
				if err != nil {
					t.Fatal(err)
				}
				kc := client(t, auth, in, keyCRN(t, in.crn, key.ID))
				kw, err := kc.Wrap(ctx, dek)
				if err != nil {
					t.Fatal(err)
				}
				if err := adm.DisableKey(ctx, key.ID); err != nil {
					t.Fatal(err)
				}
				_, err = kc.Wrap(ctx, dek)
				wantKind(t, "Wrap", err, kms.ErrKeyNotActive)
				var e *kms.Error
				if errors.As(err, &e) && (e.State != kms.StateSuspended || !strings.Contains(err.Error(), "state Suspended")) {
					t.Errorf("the state is not named: %v", err)
				}
				_, _, err = kc.Unwrap(ctx, kw)
				wantKind(t, "Unwrap", err, kms.ErrKeyNotActive)
				_, err = kc.Check(ctx)
				wantKind(t, "Check", err, kms.ErrKeyNotActive)
			})

			t.Run("deleted key", func(t *testing.T) {
				key, err := adm.CreateRootKey(ctx, "to-delete", nil)
				if err != nil {
					t.Fatal(err)
				}
				kc := client(t, auth, in, keyCRN(t, in.crn, key.ID))
				kw, err := kc.Wrap(ctx, dek)
				if err != nil {
					t.Fatal(err)
				}
				if _, err := adm.DeleteKey(ctx, key.ID, kp.ReturnMinimal); err != nil {
					t.Fatal(err)
				}
				_, err = kc.Wrap(ctx, dek)
				wantKind(t, "Wrap", err, kms.ErrKeyDeleted)
				_, _, err = kc.Unwrap(ctx, kw)
				wantKind(t, "Unwrap", err, kms.ErrKeyDeleted)
				_, err = kc.Check(ctx)
				wantKind(t, "Check", err, kms.ErrKeyDeleted)
			})

			t.Run("standard key", func(t *testing.T) {
				key, err := adm.CreateStandardKey(ctx, "standard", nil)
				if err != nil {
					t.Fatal(err)
				}
				kc := client(t, auth, in, keyCRN(t, in.crn, key.ID))
				_, err = kc.Check(ctx)
				wantKind(t, "Check", err, kms.ErrNotRootKey)
				_, err = kc.Wrap(ctx, dek)
				wantKind(t, "Wrap", err, kms.ErrNotRootKey)
			})

			t.Run("unknown key", func(t *testing.T) {
				kc := client(t, auth, in, keyCRN(t, in.crn, "00000000-0000-4000-8000-000000000000"))
				_, err := kc.Check(ctx)
				wantKind(t, "Check", err, kms.ErrKeyNotFound)
				_, _, err = kc.GenerateDEK(ctx)
				wantKind(t, "GenerateDEK", err, kms.ErrKeyNotFound)
			})

			t.Run("wrong instance", func(t *testing.T) {
				// The CRN names the other instance while the endpoint serves
				// this one.
				crn, _ := crn.ParseKey(in.crn)
				crn.InstanceID = other.instance
				kc := client(t, auth, in, crn.String())
				_, err := kc.Check(ctx)
				wantKind(t, "Check", err, kms.ErrWrongInstance)
				_, err = kc.Wrap(ctx, dek)
				wantKind(t, "Wrap", err, kms.ErrWrongInstance)
				// This instance's key ID in the other instance is unknown.
				oc := client(t, auth, other, keyCRN(t, other.crn, mustKeyID(t, in.crn)))
				_, err = oc.Check(ctx)
				wantKind(t, "Check in the other instance", err, kms.ErrKeyNotFound)
			})

			t.Run("bad ciphertext", func(t *testing.T) {
				for name, ct := range map[string]kms.WrappedDEK{
					"garbage":    {Ciphertext: "bm90IGEgY2lwaGVydGV4dA=="},
					"truncated":  {Ciphertext: w.Ciphertext[:len(w.Ciphertext)/2]},
					"not base64": {Ciphertext: "%%%"},
					"empty":      {},
				} {
					_, _, err := c.Unwrap(ctx, ct)
					wantKind(t, "Unwrap "+name, err, kms.ErrBadCiphertext)
				}
				// A DEK wrapped by the other instance's root key.
				oc := client(t, auth, other, other.crn)
				ow, err := oc.Wrap(ctx, dek)
				if err != nil {
					t.Fatal(err)
				}
				_, _, err = c.Unwrap(ctx, ow)
				wantKind(t, "Unwrap of the other instance's ciphertext", err, kms.ErrBadCiphertext)
			})
		})
	}
}

func mustKeyID(t *testing.T, keyCRN string) string {
	c, err := crn.ParseKey(keyCRN)
	if err != nil {
		t.Fatal(err)
	}
	return c.KeyID
}

func wantKind(t *testing.T, what string, err, kind error) {
	t.Helper()
	if err == nil {
		t.Errorf("%s: no error, want %v", what, kind)
		return
	}
	if !errors.Is(err, kind) {
		t.Errorf("%s: %v\nwant an error matching %v", what, err, kind)
	}
	var e *kms.Error
	if !errors.As(err, &e) {
		t.Errorf("%s: %T is not a *kms.Error", what, err)
	}
}

func TestSimRetries(t *testing.T) {
	t.Parallel()
	sim := startSim(t)
	auth := ownerAuth(t, sim)
	ctx := context.Background()
	for _, in := range instances(sim) {
		t.Run(in.name, func(t *testing.T) {
			dek, err := secret.GenerateDEK(secret.DEK256)
			if err != nil {
				t.Fatal(err)
			}
			defer dek.Zero()

			t.Run("429 with Retry-After is retried", func(t *testing.T) {
				c := client(t, auth, in, in.crn, kms.WithRetryPolicy(kms.RetryPolicy{MaxAttempts: 4, MinWait: time.Millisecond, MaxWait: 5 * time.Second}))
				id := sim.Faults.Add(faults.Rule{Service: in.fault, PathContains: "/actions/wrap", Kind: faults.Status, Status: http.StatusTooManyRequests, RetryAfter: time.Second, Count: 2})
				defer sim.Faults.Remove(id)
				start := time.Now()
				if _, err := c.Wrap(ctx, dek); err != nil {
					t.Fatal(err)
				}
				if hits := sim.Faults.Hits(id); hits != 2 {
					t.Errorf("%d 429s injected, want 2", hits)
				}
				if d := time.Since(start); d < 2*time.Second {
					t.Errorf("done in %v: two Retry-After: 1 waits not honoured", d)
				}
			})

			t.Run("persistent 5xx gives up within the bound", func(t *testing.T) {
				for _, attempts := range []int{1, 3} {
					c := client(t, auth, in, in.crn, kms.WithRetryPolicy(kms.RetryPolicy{MaxAttempts: attempts, MinWait: time.Millisecond, MaxWait: 10 * time.Millisecond}))
					id := sim.Faults.Add(faults.Rule{Service: in.fault, Kind: faults.Status, Status: http.StatusInternalServerError})
					_, err := c.Wrap(ctx, dek)
					sim.Faults.Remove(id)
					wantKind(t, "Wrap", err, kms.ErrUnavailable)
					if hits := sim.Faults.Hits(id); hits != attempts {
						t.Errorf("MaxAttempts %d: the service saw %d attempts", attempts, hits)
					}
					var e *kms.Error
					if errors.As(err, &e) && (e.Attempts != attempts || e.Status != 500) {
						t.Errorf("error: attempts %d status %d", e.Attempts, e.Status)
					}
				}
			})

			t.Run("connection resets are retried", func(t *testing.T) {
				c := client(t, auth, in, in.crn)
				id := sim.Faults.Add(faults.Rule{Service: in.fault, Kind: faults.Reset, Count: 2})
				defer sim.Faults.Remove(id)
				if _, err := c.Wrap(ctx, dek); err != nil {
					t.Fatal(err)
				}
				if hits := sim.Faults.Hits(id); hits != 2 {
					t.Errorf("%d resets, want 2", hits)
				}
			})
		})
	}
}

func TestSimRotation(t *testing.T) {
	t.Parallel()
	sim := startSim(t)
	auth := ownerAuth(t, sim)
	ctx := context.Background()
	for _, in := range instances(sim) {
		t.Run(in.name, func(t *testing.T) {
			adm := admin(t, sim, in)
			key, err := adm.CreateRootKey(ctx, "to-rotate", nil)
			if err != nil {
				t.Fatal(err)
			}
			c := client(t, auth, in, keyCRN(t, in.crn, key.ID))
			dek, w, err := kms.NewDEK(ctx, c, secret.DEK512)
			if err != nil {
				t.Fatal(err)
			}
			defer dek.Zero()
			if err := adm.Rotate(ctx, key.ID, ""); err != nil {
				t.Fatal(err)
			}
			info, err := c.Describe(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if info.KeyVersion == w.KeyVersion || info.Rotated.IsZero() {
				t.Fatalf("rotation did not make a new version: %+v", info)
			}
			got, rewrapped, err := c.Unwrap(ctx, w)
			if err != nil {
				t.Fatal(err)
			}
			defer got.Zero()
			if !bytes.Equal(got.Bytes(), dek.Bytes()) {
				t.Fatal("unwrap after rotation returned other bytes")
			}
			if rewrapped == nil || rewrapped.Ciphertext == w.Ciphertext {
				t.Fatalf("no rewrapped ciphertext after rotation: %+v", rewrapped)
			}
			if rewrapped.KeyVersion != info.KeyVersion {
				t.Errorf("rewrapped key version %q, want the newest %q", rewrapped.KeyVersion, info.KeyVersion)
			}
			again, rw2, err := c.Unwrap(ctx, *rewrapped)
			if err != nil {
				t.Fatal(err)
			}
			defer again.Zero()
			if !bytes.Equal(again.Bytes(), dek.Bytes()) || rw2 != nil {
				t.Errorf("the rewrapped ciphertext does not unwrap to the DEK without rewrapping (rewrapped %v)", rw2)
			}
		})
	}
}

// TestSimNoSecretsInLogsOrErrors drives the failure paths with debug logging
// on and searches every log line and error string for the DEK, the API key
// and the access token, raw and encoded.
func TestSimNoSecretsInLogsOrErrors(t *testing.T) {
	t.Parallel()
	sim := startSim(t)
	ctx := context.Background()
	var logs bytes.Buffer
	log := slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	auth := ownerAuth(t, sim)
	token, err := auth.AccessToken(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var errs []error
	note := func(err error) {
		if err != nil {
			errs = append(errs, err)
		}
	}
	var deks []*secret.DEK
	for _, in := range instances(sim) {
		adm := admin(t, sim, in)
		c := client(t, auth, in, in.crn, kms.WithLogger(log))
		for _, size := range []int{secret.DEK256, secret.DEK512} {
			dek, w, err := kms.NewDEK(ctx, c, size)
			if err != nil {
				t.Fatal(err)
			}
			deks = append(deks, dek)
			log.Debug("dek", "dek", dek, "key", secret.NewString(sim.Account.APIKey)) // the types redact themselves
			// Faults: 429 exhausted, 5xx exhausted, resets.
			for _, r := range []faults.Rule{
				{Service: in.fault, Kind: faults.Status, Status: 429, Count: 3},
				{Service: in.fault, Kind: faults.Status, Status: 503, Count: 3},
				{Service: in.fault, Kind: faults.Reset, Count: 3},
			} {
				id := sim.Faults.Add(r)
				_, err := c.Wrap(ctx, dek)
				note(err)
				sim.Faults.Remove(id)
			}
			// Typed failures: bad ciphertext, disabled, deleted, wrong instance.
			_, _, err = c.Unwrap(ctx, kms.WrappedDEK{Ciphertext: w.Ciphertext[:20]})
			note(err)
			key, err := adm.CreateRootKey(ctx, "leak", nil)
			if err != nil {
				t.Fatal(err)
			}
			kc := client(t, auth, in, keyCRN(t, in.crn, key.ID), kms.WithLogger(log))
			kw, err := kc.Wrap(ctx, dek)
			if err != nil {
				t.Fatal(err)
			}
			_ = adm.DisableKey(ctx, key.ID)
			_, err = kc.Wrap(ctx, dek)
			note(err)
			_, _, err = kc.Unwrap(ctx, kw)
			note(err)
			_ = adm.EnableKey(ctx, key.ID)
			_ = adm.Rotate(ctx, key.ID, "")
			d, _, err := kc.Unwrap(ctx, kw) // rewrap path logs
			note(err)
			d.Zero()
			_, _ = adm.DeleteKey(ctx, key.ID, kp.ReturnMinimal)
			_, err = kc.Wrap(ctx, dek)
			note(err)
			crn, _ := crn.ParseKey(in.crn)
			crn.InstanceID = "00000000-0000-4000-8000-000000000001"
			_, err = client(t, auth, in, crn.String(), kms.WithLogger(log)).Wrap(ctx, dek)
			note(err)
		}
		// A refused API key.
		bad, err := iam.NewAuthenticator(secret.NewString(sim.Account.APIKey+"x"), iam.WithURL(sim.URLs.IAM))
		if err != nil {
			t.Fatal(err)
		}
		_, err = client(t, bad, in, in.crn, kms.WithLogger(log)).Wrap(ctx, deks[0])
		note(err)
	}
	if len(errs) < 20 {
		t.Fatalf("only %d failures collected", len(errs))
	}
	var text strings.Builder
	text.Write(logs.Bytes())
	for _, err := range errs {
		text.WriteString(err.Error() + "\n")
	}
	haystack := text.String()
	if testing.Verbose() {
		t.Log(haystack)
	}
	if !strings.Contains(haystack, `"level":"DEBUG"`) {
		t.Fatal("no debug logs captured")
	}
	secrets := map[string][]byte{"API key": []byte(sim.Account.APIKey), "token": []byte(token.Reveal())}
	// The detector finds a DEK embedded in a request body at any alignment.
	for off := range 3 {
		probe := `{"plaintext":"` + base64.StdEncoding.EncodeToString(append(make([]byte, off), deks[1].Bytes()...)) + `"}`
		found := false
		for _, v := range encodings(deks[1].Bytes()) {
			found = found || strings.Contains(probe, v)
		}
		if !found {
			t.Fatalf("the leak detector misses a DEK at offset %d", off)
		}
	}
	for i, d := range deks {
		secrets["DEK "+string(rune('A'+i))] = d.Bytes()
	}
	for name, s := range secrets {
		for form, v := range encodings(s) {
			if len(v) >= 8 && strings.Contains(haystack, v) {
				t.Errorf("the %s appears %s in logs or errors", name, form)
			}
		}
	}
	for _, d := range deks {
		d.Zero()
	}
}

// encodings returns the forms in which secret bytes could leak: raw, hex
// and every base64 alphabet, the latter also from offsets 1 and 2 so that a
// secret embedded in a larger encoded text is found whatever its alignment.
func encodings(b []byte) map[string]string {
	m := map[string]string{
		"raw":       string(b),
		"hex":       hex.EncodeToString(b),
		"HEX":       strings.ToUpper(hex.EncodeToString(b)),
		"base64":    base64.StdEncoding.EncodeToString(b),
		"base64url": base64.URLEncoding.EncodeToString(b),
	}
	for off := 0; off < 3 && off < len(b); off++ {
		for name, enc := range map[string]*base64.Encoding{"std": base64.RawStdEncoding, "url": base64.RawURLEncoding} {
			s := enc.EncodeToString(b[off:])
			// Drop the last characters, which depend on what follows.
			if len(s) > 4 {
				s = s[:len(s)-3]
			}
			m["base64-"+name+"-offset-"+string(rune('0'+off))] = s
		}
	}
	return m
}

// A refused API key is ErrUnauthorized; an IAM outage is not.
func TestSimTokenFailures(t *testing.T) {
	t.Parallel()
	sim := startSim(t)
	ctx := context.Background()
	in := instances(sim)[0]

	bad, err := iam.NewAuthenticator(secret.NewString(sim.Account.APIKey+"-revoked"), iam.WithURL(sim.URLs.IAM))
	if err != nil {
		t.Fatal(err)
	}
	_, err = client(t, bad, in, in.crn).Describe(ctx)
	wantKind(t, "refused key", err, kms.ErrUnauthorized)
	if !errors.Is(err, iam.ErrAuthentication) {
		t.Errorf("the IAM cause is lost: %v", err)
	}

	id := sim.Faults.Add(faults.Rule{Service: cloudsim.ServiceIAM, Kind: faults.Status, Status: http.StatusInternalServerError})
	defer sim.Faults.Remove(id)
	_, err = client(t, ownerAuth(t, sim), in, in.crn).Describe(ctx)
	if err == nil || errors.Is(err, kms.ErrUnauthorized) || !strings.Contains(err.Error(), "getting an IAM token") {
		t.Errorf("IAM outage: %v; want a token error that is not ErrUnauthorized", err)
	}
}
