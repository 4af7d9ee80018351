package e2e_test

import (
	"context"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/e2eimage/e2eimage/e2e"
	"github.com/e2eimage/e2eimage/e2e/ibmcloud"
	"github.com/e2eimage/e2eimage/secret"
)

// closedURL is an http URL on a loopback port nothing listens on.
func closedURL(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := l.Addr().String()
	require.NoError(t, l.Close())
	return "http://" + addr
}

// With no service reachable (connection refused; a name that does not
// resolve), the run stops in preflight with one *UnreachableError naming
// the host, not with a report of set-up fixes for every check that met it.
func TestUnreachableIsReportedOnceByCause(t *testing.T) {
	for _, c := range []struct {
		name, url string
		want      func(error) bool
	}{
		{"connection refused", closedURL(t), func(err error) bool { var op *net.OpError; return errors.As(err, &op) }},
		{"no such host", "https://e2e-test.invalid", func(err error) bool { var d *net.DNSError; return errors.As(err, &d) }},
	} {
		t.Run(c.name, func(t *testing.T) {
			u := c.url
			cl, err := ibmcloud.Connect(ibmcloud.Config{
				APIKey:     secret.NewString("an-api-key-that-never-leaves"),
				RootKeyCRN: "crn:v1:bluemix:public:kms:us-south:a/0123456789abcdef0123456789abcdef:11111111-2222-3333-4444-555555555555:key:66666666-7777-8888-9999-000000000000",
				Endpoints:  ibmcloud.Endpoints{IAM: u, KMS: u, S3: u, SoftLayer: u + "/rest/v3.1"},
			})
			require.NoError(t, err)
			defer cl.Close()
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			var steps []e2e.Step
			res, err := e2e.Run(ctx, e2e.Plan{
				Image: openFile(t, sampleFile(t)), Name: "unreachable", OSCode: "UBUNTU_22_64",
				KeyService: cl.Keys, IAM: cl.IAM, COS: cl.COS, Classic: cl.Classic, Bucket: "bucket",
				ImportAPIKey: secret.NewString("another-key"),
				OnStep:       func(s e2e.Step) { steps = append(steps, s) },
			})
			require.ErrorIs(t, err, e2e.ErrUnreachable)
			var ue *e2e.UnreachableError
			require.ErrorAs(t, err, &ue)
			require.True(t, c.want(ue.Err), "%T %v", ue.Err, ue.Err)
			require.Contains(t, err.Error(), "cannot reach ")
			require.Contains(t, err.Error(), strings.TrimPrefix(strings.TrimPrefix(u, "http://"), "https://"))
			var pe *e2e.PreflightError
			require.False(t, errors.As(err, &pe), "not a report of set-up fixes")
			failed := 0
			for _, p := range res.Preflight {
				if !p.OK {
					failed++
				}
			}
			t.Logf("%d preflight checks met the failure; reported once: %v", failed, err)
			require.Greater(t, failed, 1, "several checks met the unreachable host")
			require.Equal(t, 1, strings.Count(err.Error(), "cannot reach"))
			require.NotContains(t, err.Error(), "an-api-key-that-never-leaves")
		})
	}
}
