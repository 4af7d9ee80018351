//go:build live

package ibmcloud_test

// The live check: Clients.Check against a real IBM Cloud account, read-only.
// Built only with -tags live (never in CI), skipped without
// IBMCLOUD_API_KEY:
//
//	IBMCLOUD_API_KEY=... E2E_ROOT_KEY_CRN=crn:... E2E_BUCKET=... \
//	    go test -tags live -run Live -v ./e2e/
//
// Optional: IBMCLOUD_REGION (needed without E2E_ROOT_KEY_CRN),
// E2E_COS_INSTANCE, E2E_LOGS_URL (the Cloud Logs instance Activity Tracker
// routes to), SL_USERNAME and SL_API_KEY (classic credentials, default the
// IBM Cloud key), E2E_SAVE_FIXTURES (a directory that receives the
// scrubbed responses), E2E_ENDPOINTS (a JSON file of service URLs, as for
// examples/e2e -endpoints: private endpoints, or a rehearsal against
// examples/cloudsim).

import (
	"context"
	"net/http"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/e2eimage/e2eimage/classic"
	"github.com/e2eimage/e2eimage/e2e"
	"github.com/e2eimage/e2eimage/e2e/ibmcloud"
	"github.com/e2eimage/e2eimage/secret"
)

// liveService names the IBM Cloud service behind a host.
func liveService(host string) string {
	h := strings.ToLower(host)
	switch {
	case strings.HasPrefix(h, "iam.") || strings.HasPrefix(h, "private.iam."):
		return "iam"
	case strings.Contains(h, ".logs.cloud.ibm.com"):
		return "logs"
	case strings.Contains(h, "kms.cloud.ibm.com") || strings.Contains(h, "hs-crypto"):
		return "kms"
	case strings.Contains(h, "cloud-object-storage"):
		return "s3"
	case strings.Contains(h, "softlayer.com"):
		return "softlayer"
	}
	return "unknown(" + host + ")"
}

func TestLiveCheck(t *testing.T) {
	apiKey := strings.TrimSpace(os.Getenv("IBMCLOUD_API_KEY"))
	if apiKey == "" {
		t.Skip("IBMCLOUD_API_KEY is not set: the live check needs an IBM Cloud account " +
			"(also E2E_ROOT_KEY_CRN and E2E_BUCKET; see README.md, \"Checking a real account\")")
	}
	cloud := ibmcloud.Config{
		APIKey:      secret.NewString(apiKey),
		RootKeyCRN:  os.Getenv("E2E_ROOT_KEY_CRN"),
		Region:      os.Getenv("IBMCLOUD_REGION"),
		COSInstance: os.Getenv("E2E_COS_INSTANCE"),
	}
	cloud.Endpoints.ActivityTracker = os.Getenv("E2E_LOGS_URL")
	if u, k := os.Getenv("SL_USERNAME"), os.Getenv("SL_API_KEY"); u != "" && k != "" {
		cloud.Classic = classic.Credentials{Username: u, APIKey: secret.NewString(k)}
	}
	if cloud.RootKeyCRN == "" && cloud.Region == "" {
		t.Fatal("set E2E_ROOT_KEY_CRN (or at least IBMCLOUD_REGION) to say where the account's resources are")
	}

	service := liveService
	if file := os.Getenv("E2E_ENDPOINTS"); file != "" {
		ep, err := ibmcloud.LoadEndpoints(file)
		require.NoError(t, err)
		logs := cloud.Endpoints.ActivityTracker
		cloud.Endpoints = ep
		if logs != "" {
			cloud.Endpoints.ActivityTracker = logs
		}
		byHost := map[string]string{}
		for svc, raw := range map[string]string{"iam": ep.IAM, "kms": ep.KMS, "s3": ep.S3, "softlayer": ep.SoftLayer,
			"logs": cloud.Endpoints.ActivityTracker} {
			if u, err := url.Parse(raw); err == nil && u.Host != "" {
				byHost[u.Host] = svc
			}
		}
		service = func(host string) string {
			if s, ok := byHost[host]; ok {
				return s
			}
			return liveService(host)
		}
	}

	wire := &wireLog{base: http.DefaultTransport.(*http.Transport).Clone()}
	rec, err := ibmcloud.NewRecorder(wire)
	require.NoError(t, err)
	cloud.HTTPClient = &http.Client{Transport: rec}
	cl, err := ibmcloud.Connect(cloud)
	require.NoError(t, err)
	t.Cleanup(cl.Close)

	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	rep, err := cl.Check(ctx, ibmcloud.CheckOptions{Bucket: os.Getenv("E2E_BUCKET"), Recorder: rec})
	require.NotNil(t, rep, "%v", err)
	t.Logf("check of %s:\n%s", time.Now().Format(time.RFC3339), rep)

	// Whatever the answers, nothing but reads left the process.
	require.Empty(t, writes(wire.requests(), service), "the check sent requests that are not reads")
	for _, r := range rec.Requests() {
		require.False(t, r.Refused, "the Recorder refused %s %s", r.Method, r.Path)
	}

	for _, c := range rep.Calls {
		t.Run(c.Name, func(t *testing.T) {
			switch c.Status {
			case ibmcloud.CheckSkipped:
				t.Skip(c.Detail)
			case ibmcloud.CheckFailed:
				t.Errorf("%s\nfix: %s", c.Error, c.Fix)
			default:
				t.Logf("%s (%s, %d responses)", c.Detail, c.Duration, len(c.Responses))
			}
		})
	}
	if dir := os.Getenv("E2E_SAVE_FIXTURES"); dir != "" {
		paths, werr := rep.WriteFixtures(dir)
		require.NoError(t, werr)
		t.Logf("wrote %d scrubbed responses to %s; read them before publishing", len(paths), dir)
	}
	if err != nil {
		t.Errorf("the live check failed: %v", err)
	}
}
