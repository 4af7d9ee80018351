package ibmcloud_test

import (
	"context"
	"encoding/hex"
	"net/url"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/e2eimage/e2eimage/audit"
	"github.com/e2eimage/e2eimage/e2e/ibmcloud"
	"github.com/e2eimage/e2eimage/iam"
	"github.com/e2eimage/e2eimage/internal/cloudsim"
	"github.com/e2eimage/e2eimage/internal/testenv"
	"github.com/e2eimage/e2eimage/secret"
)

// tcpEstablished is the state column of an established socket in
// /proc/net/tcp (include/net/tcp_states.h: TCP_ESTABLISHED = 1).
const tcpEstablished = "01"

// openConns counts the established TCP connections to each of ports (a
// port -> service name map), from /proc/self/net/tcp{,6}: the client end
// of a connection is the one whose remote port is the service's.
func openConns(t *testing.T, ports map[int]string) map[string]int {
	t.Helper()
	out := map[string]int{}
	for _, f := range []string{"/proc/self/net/tcp", "/proc/self/net/tcp6"} {
		b, err := os.ReadFile(f)
		if os.IsNotExist(err) {
			continue // no IPv6
		}
		require.NoError(t, err)
		lines := strings.Split(string(b), "\n")
		for _, l := range lines[1:] { // the first line names the columns
			fs := strings.Fields(l)
			if len(fs) < 4 || fs[3] != tcpEstablished {
				continue
			}
			_, hexPort, ok := strings.Cut(fs[2], ":") // rem_address, ADDR:PORT in hex
			require.True(t, ok, "rem_address %q", fs[2])
			p, err := hex.DecodeString(hexPort)
			require.NoError(t, err)
			require.Len(t, p, 2)
			if name, ok := ports[int(p[0])<<8|int(p[1])]; ok {
				out[name]++
			}
		}
	}
	return out
}

// TestClientsCloseReleasesEveryConnection uses every client Connect makes
// against the simulator, which gives each service a port of its own, and
// checks that Close leaves no connection to any of them, without help
// from http.DefaultTransport.CloseIdleConnections.
func TestClientsCloseReleasesEveryConnection(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	conns := testenv.NewConns()
	sim, err := cloudsim.Start(ctx, cloudsim.Options{Seed: 5, ClockSpeed: 1000, ConnState: conns.Track})
	require.NoError(t, err)
	defer sim.Close()
	ports := map[int]string{}
	for name, raw := range map[string]string{"iam": sim.URLs.IAM, "iam_identity": sim.URLs.IAMIdentity,
		"iam_policy": sim.URLs.IAMPolicy, "kms": sim.URLs.KMS, "s3": sim.URLs.S3, "softlayer": sim.URLs.SoftLayer,
		"activity_tracker": sim.URLs.ActivityTracker} {
		u, err := url.Parse(raw)
		require.NoError(t, err)
		p, err := strconv.Atoi(u.Port())
		require.NoError(t, err)
		ports[p] = name
	}
	require.Len(t, ports, 7, "the test needs a port per service")

	clients, err := ibmcloud.Connect(ibmcloud.Config{
		APIKey: secret.NewString(sim.Account.APIKey), RootKeyCRN: sim.Account.RootKeyCRN,
		Endpoints: ibmcloud.Endpoints{IAM: sim.URLs.IAM, IAMIdentity: sim.URLs.IAMIdentity, IAMPolicy: sim.URLs.IAMPolicy,
			KMS: sim.URLs.KMS, S3: sim.URLs.S3, SoftLayer: sim.URLs.SoftLayer, ActivityTracker: sim.URLs.ActivityTracker},
	})
	require.NoError(t, err)
	_, err = clients.Keys.Describe(ctx)
	require.NoError(t, err)
	_, _ = clients.COS.Stat(ctx, sim.Account.Bucket, "none") // not found, over a kept-alive connection
	_, err = clients.IAM.FindServiceID(ctx, "none")
	require.NoError(t, err)
	_, err = clients.IAM.FindAuthorization(ctx, iam.Authorization{Source: iam.ServiceBlockStorage, Target: iam.ServiceKeyProtect})
	require.NoError(t, err)
	_, err = clients.Audit.Collect(ctx, audit.Query{Start: time.Now().Add(-time.Hour), End: time.Now(), TemplateIDs: []int{1}})
	require.NoError(t, err)
	used := openConns(t, ports)
	for _, name := range ports {
		require.Positive(t, used[name], "no connection to %s was kept open to test Close with: %v", name, used)
	}

	clients.Close()
	// A connection whose response was read just before Close goes back
	// to its pool, and is closed, a moment later: wait for the servers to
	// see every connection close (each close is an event), then check the
	// client ends too.
	conns.WaitFor(t, "after Close", func(open map[string]int) bool { return len(open) == 0 })
	require.Empty(t, openConns(t, ports), "connections left open after Close")

	// The clients stay usable.
	_, err = clients.Keys.Describe(ctx)
	require.NoError(t, err)
	clients.Close()
}
