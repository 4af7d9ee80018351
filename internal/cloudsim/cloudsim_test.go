package cloudsim_test

import (
	"context"
	"encoding/base64"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	kp "github.com/IBM/keyprotect-go-client"
	"github.com/stretchr/testify/require"

	"github.com/e2eimage/e2eimage/internal/cloudsim"
	"github.com/e2eimage/e2eimage/internal/cloudsim/atsim"
	"github.com/e2eimage/e2eimage/internal/faults"
	"github.com/e2eimage/e2eimage/internal/testenv"
)

func TestMain(m *testing.M) {
	// The KP client shortens its retry waits.
	kp.RetryWaitMax = 10 * time.Millisecond
	kp.RetryMax = 3
	testenv.VerifyTestMain(m, testenv.NoStrayTemp(testenv.SimTempPattern))
}

func start(t *testing.T, opts cloudsim.Options) *cloudsim.Sim {
	t.Helper()
	if opts.ClockSpeed == 0 {
		opts.ClockSpeed = 600
	}
	sim, err := cloudsim.Start(context.Background(), opts)
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, sim.Close()) })
	return sim
}

func kpClient(t *testing.T, sim *cloudsim.Sim, baseURL, instance string) *kp.Client {
	t.Helper()
	c, err := kp.New(kp.ClientConfig{
		BaseURL: baseURL, APIKey: sim.Account.APIKey, TokenURL: sim.URLs.TokenURL(), InstanceID: instance,
	}, kp.DefaultTransport())
	require.NoError(t, err)
	return c
}

func TestStartSeedsADeterministicAccount(t *testing.T) {
	a := start(t, cloudsim.Options{Seed: 7})
	b := start(t, cloudsim.Options{Seed: 7})
	c := start(t, cloudsim.Options{Seed: 8})
	require.Equal(t, a.Account.AccountID, b.Account.AccountID)
	require.Equal(t, a.Account.APIKey, b.Account.APIKey)
	require.Equal(t, a.Account.KMSInstanceID, b.Account.KMSInstanceID)
	require.Equal(t, a.Account.RootKeyCRN, b.Account.RootKeyCRN)
	require.Equal(t, a.Account.Bucket, b.Account.Bucket)
	require.NotEqual(t, a.Account.AccountID, c.Account.AccountID)
	require.Len(t, a.Account.APIKey, 44)
	require.Equal(t, "us-south", a.Account.Region)
	require.True(t, strings.HasPrefix(a.Account.RootKeyCRN, "crn:v1:bluemix:public:kms:us-south:a/"+a.Account.AccountID+":"+a.Account.KMSInstanceID+":key:"))
	require.True(t, strings.HasPrefix(a.Account.HPCSRootKeyCRN, "crn:v1:bluemix:public:hs-crypto:us-south:"))
	require.True(t, strings.HasSuffix(a.URLs.SoftLayer, "/rest/v3.1"))
	require.NotEqual(t, a.URLs.KMS, b.URLs.KMS, "random ports")
	require.False(t, a.IAM.HasAuthorization(a.Account.AccountID, "server-protect", "kms", a.Account.KMSInstanceID), "a fresh account")

	d := start(t, cloudsim.Options{SeedAuthorizations: true})
	require.True(t, d.IAM.HasAuthorization(d.Account.AccountID, "server-protect", "kms", d.Account.KMSInstanceID))
	require.True(t, d.IAM.HasAuthorization(d.Account.AccountID, "server-protect", "hs-crypto", d.Account.HPCSInstanceID))
}

func TestKeyProtectAndHPCSThroughSDK(t *testing.T) {
	sim := start(t, cloudsim.Options{})
	ctx := context.Background()
	for _, tc := range []struct {
		name, url, inst, crn string
	}{
		{"kms", sim.URLs.KMS, sim.Account.KMSInstanceID, sim.Account.RootKeyCRN},
		{"hpcs", sim.URLs.HPCS, sim.Account.HPCSInstanceID, sim.Account.HPCSRootKeyCRN},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := kpClient(t, sim, tc.url, tc.inst)
			keyID := tc.crn[strings.LastIndexByte(tc.crn, ':')+1:]
			k, err := c.GetKey(ctx, keyID)
			require.NoError(t, err)
			require.Equal(t, tc.crn, k.CRN)
			dek, wrapped, err := c.WrapCreateDEK(ctx, keyID, nil)
			require.NoError(t, err)
			raw, err := base64.StdEncoding.DecodeString(string(dek))
			require.NoError(t, err)
			require.Len(t, raw, 32)
			pt, _, err := c.UnwrapV2(ctx, keyID, wrapped, nil)
			require.NoError(t, err)
			require.Equal(t, dek, pt)
			// The other instance's GUID is refused.
			other := sim.Account.HPCSInstanceID
			if tc.inst == other {
				other = sim.Account.KMSInstanceID
			}
			_, err = kpClient(t, sim, tc.url, other).GetKey(ctx, keyID)
			var e *kp.Error
			require.True(t, errors.As(err, &e))
			require.Equal(t, http.StatusUnauthorized, e.StatusCode)
		})
	}
	require.NotEmpty(t, sim.Events.Find(atsim.Filter{Action: "kms.secrets.wrap", TargetID: sim.Account.HPCSRootKeyCRN}))
}

func TestFaultsAreRetriedByKPClient(t *testing.T) {
	sim := start(t, cloudsim.Options{})
	ctx := context.Background()
	c := kpClient(t, sim, sim.URLs.KMS, sim.Account.KMSInstanceID)
	keyID := sim.Account.RootKeyCRN[strings.LastIndexByte(sim.Account.RootKeyCRN, ':')+1:]

	// Two 429s with Retry-After: 0, then success.
	id := sim.Faults.Add(faults.Rule{Service: cloudsim.ServiceKMS, PathContains: "/actions/wrap", Kind: faults.Status, Status: 429, Count: 2})
	_, _, err := c.WrapCreateDEK(ctx, keyID, nil)
	require.NoError(t, err)
	require.Equal(t, 2, sim.Faults.Hits(id))

	// 503 on every try: the client gives up after RetryMax retries.
	id = sim.Faults.Add(faults.Rule{Service: cloudsim.ServiceKMS, Kind: faults.Status, Status: 503})
	_, _, err = c.WrapCreateDEK(ctx, keyID, nil)
	var e *kp.Error
	require.True(t, errors.As(err, &e), "%T %v", err, err)
	require.Equal(t, 503, e.StatusCode)
	require.Equal(t, kp.RetryMax+1, sim.Faults.Hits(id))
	sim.Faults.Remove(id)

	// A reset connection is retried too.
	id = sim.Faults.Add(faults.Rule{Service: cloudsim.ServiceKMS, Kind: faults.Reset, Count: 1})
	_, _, err = c.WrapCreateDEK(ctx, keyID, nil)
	require.NoError(t, err)
	require.Equal(t, 1, sim.Faults.Hits(id))
	require.Equal(t, map[string]int{"kms": 2 + kp.RetryMax + 1 + 1}, sim.Faults.Counts())
}

func TestCloseOnContextCancel(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	sim, err := cloudsim.Start(ctx, cloudsim.Options{})
	require.NoError(t, err)
	url := sim.URLs.IAM
	cancel()
	require.Eventually(t, func() bool {
		resp, err := http.Post(url+"/identity/token", "application/x-www-form-urlencoded", nil)
		if err == nil {
			resp.Body.Close()
		}
		return err != nil
	}, 5*time.Second, 20*time.Millisecond)
	require.NoError(t, sim.Close())
}

func TestTimeoutFaultDoesNotBlockClose(t *testing.T) {
	sim, err := cloudsim.Start(context.Background(), cloudsim.Options{})
	require.NoError(t, err)
	sim.Faults.Add(faults.Rule{Service: cloudsim.ServiceIAM, Kind: faults.Timeout})
	done := make(chan error, 1)
	go func() {
		resp, err := http.Post(sim.URLs.TokenURL(), "application/x-www-form-urlencoded", nil)
		if err == nil {
			resp.Body.Close()
		}
		done <- err
	}()
	require.Eventually(t, func() bool { return sim.Faults.Injected() == 1 }, 5*time.Second, 10*time.Millisecond)
	require.NoError(t, sim.Close())
	require.Error(t, <-done)
}
