package cos

import (
	"bytes"
	"context"
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/e2eimage/e2eimage/internal/cloudsim"
	"github.com/e2eimage/e2eimage/internal/faults"
	"github.com/e2eimage/e2eimage/secret"
)

// startSim runs the cloud simulator and returns an API-key client of its
// COS, authenticated through its IAM.
func startSim(t *testing.T) (*cloudsim.Sim, *Client) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	sim, err := cloudsim.Start(ctx, cloudsim.Options{Seed: 42})
	require.NoError(t, err)
	t.Cleanup(func() {
		cancel()
		_ = sim.Close()
	})
	c, err := New(Config{
		Region:            sim.Account.Region,
		Endpoint:          sim.URLs.S3,
		APIKey:            secret.NewString(sim.Account.APIKey),
		ServiceInstanceID: sim.Account.COSInstanceCRN,
		IAMTokenURL:       sim.URLs.TokenURL(),
	})
	require.NoError(t, err)
	t.Cleanup(c.CloseIdleConnections)
	return sim, c
}

func TestSimulatorBucketChecks(t *testing.T) {
	sim, c := startSim(t)
	region := sim.Account.Region

	info, err := c.CheckBucket(t.Context(), sim.Account.Bucket, region)
	require.NoError(t, err)
	require.Equal(t, Regional, info.Location.Resiliency)
	require.Equal(t, region, info.Location.Location)

	cases := []struct {
		bucket, constraint string
		want               error
		res                Resiliency
	}{
		{"sim-regional", region + "-smart", nil, Regional},
		{"sim-onerate", region + "-onerate_active", nil, Regional},
		{"sim-elsewhere", "eu-de-standard", ErrRegionMismatch, Regional},
		{"sim-cross", "us-standard", ErrNotRegional, CrossRegion},
		{"sim-single", "ams03-standard", ErrNotRegional, SingleSite},
	}
	for _, tc := range cases {
		t.Run(tc.bucket, func(t *testing.T) {
			require.NoError(t, c.CreateBucket(t.Context(), tc.bucket, BucketSpec{LocationConstraint: tc.constraint}))
			info, err := c.CheckBucket(t.Context(), tc.bucket, region)
			if tc.want == nil {
				require.NoError(t, err)
			} else {
				require.ErrorIs(t, err, tc.want)
			}
			require.Equal(t, tc.res, info.Location.Resiliency)
			require.Equal(t, tc.constraint, info.Location.Constraint)
		})
	}
	_, err = c.CheckBucket(t.Context(), "sim-missing", region)
	require.ErrorIs(t, err, ErrBucketNotFound)
}

func TestSimulatorKeyProtectBucket(t *testing.T) {
	sim, c := startSim(t)
	// Without the service-to-service authorization COS may not use the key.
	err := c.CreateBucket(t.Context(), "sim-kp", BucketSpec{RootKeyCRN: sim.Account.RootKeyCRN})
	require.Error(t, err)
	require.Equal(t, http.StatusBadRequest, statusCode(err))
	sim.IAM.AddAuthorization("cloud-object-storage", "kms", sim.Account.KMSInstanceID)

	err = c.CreateBucket(t.Context(), "sim-kp", BucketSpec{RootKeyCRN: sim.Account.RootKeyCRN})
	require.NoError(t, err)
	info, err := c.CheckBucket(t.Context(), "sim-kp", sim.Account.Region)
	require.NoError(t, err)
	require.True(t, info.KeyProtect)
	require.Equal(t, sim.Account.RootKeyCRN, info.RootKeyCRN)

	err = c.CreateBucket(t.Context(), "sim-kp-bad", BucketSpec{RootKeyCRN: sim.Account.RootKeyCRN + "-nope"})
	require.Error(t, err, "an unknown root key is refused")
}

func TestSimulatorUploadThroughFaults(t *testing.T) {
	sim, c := startSim(t)
	bucket := sim.Account.Bucket
	sim.Faults.Add(faults.Rule{Service: "s3", Method: http.MethodPut, QueryContains: "partNumber=",
		Kind: faults.Status, Status: http.StatusServiceUnavailable, Count: 2})
	sim.Faults.Add(faults.Rule{Service: "s3", Method: http.MethodPut, QueryContains: "partNumber=2&",
		Kind: faults.Reset, AfterBytes: 1 << 20, Count: 1})

	for i, tc := range roundTripCases {
		t.Run(tc.name, func(t *testing.T) {
			data := prngBytes(t, uint64(100+i), tc.size)
			r, size := readerOf(tc.at, data), tc.size
			if tc.unknown {
				size = SizeUnknown
			}
			res, err := c.Upload(t.Context(), bucket, tc.name, r, size, WithPartSize(ps), fastRetries)
			require.NoError(t, err)
			require.True(t, res.Verified)
			require.True(t, res.ETagVerified)
			require.Equal(t, tc.parts, res.Parts)
			downloadBoth(t, c, bucket, tc.name, data)
		})
	}
	require.Equal(t, 3, sim.Faults.Counts()["s3"])
	pending, err := c.PendingUploads(t.Context(), bucket, "")
	require.NoError(t, err)
	require.Empty(t, pending)
}

// readerOf returns data as an io.ReaderAt (at) or as a plain stream.
func readerOf(at bool, data []byte) interface{ Read([]byte) (int, error) } {
	if at {
		return bytes.NewReader(data)
	}
	return onlyReader{bytes.NewReader(data)}
}
