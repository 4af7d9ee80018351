package cos

import (
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestParseLocationConstraint(t *testing.T) {
	cases := []struct {
		in       string
		location string
		class    string
		res      Resiliency
	}{
		{"us-south-standard", "us-south", "standard", Regional},
		{"eu-de-vault", "eu-de", "vault", Regional},
		{"jp-tok-cold", "jp-tok", "cold", Regional},
		{"au-syd-smart", "au-syd", "smart", Regional},
		{"ca-tor-flex", "ca-tor", "flex", Regional},
		{"in-che-standard", "in-che", "standard", Regional},
		{"us-south-onerate_active", "us-south", "onerate_active", Regional},
		{"eu-gb-onerate_active", "eu-gb", "onerate_active", Regional},
		{"US-East-Standard", "us-east", "standard", Regional},
		{"us-south", "us-south", "", Regional}, // S3-compatible servers answer the bare region
		{"us-standard", "us", "standard", CrossRegion},
		{"eu-smart", "eu", "smart", CrossRegion},
		{"ap-cold", "ap", "cold", CrossRegion},
		{"ap-onerate_active", "ap", "onerate_active", CrossRegion},
		{"us", "us", "", CrossRegion},
		{"ams03-standard", "ams03", "standard", SingleSite},
		{"che01-vault", "che01", "vault", SingleSite},
		{"mon01-standard", "mon01", "standard", SingleSite},
		{"par01-cold", "par01", "cold", SingleSite},
		{"sjc04-smart", "sjc04", "smart", SingleSite},
		{"sng01-flex", "sng01", "flex", SingleSite},
	}
	for _, tc := range cases {
		t.Run(tc.in, func(t *testing.T) {
			loc, err := ParseLocationConstraint(tc.in)
			require.NoError(t, err)
			require.Equal(t, Location{Constraint: tc.in, Location: tc.location, Class: tc.class, Resiliency: tc.res}, loc)
		})
	}
	for _, bad := range []string{"", "-", "standard", "us-south-glacier", "u-south-standard", "us-south-1-standard",
		"ams3-standard", "mars-standard", "us south", "us-south-"} {
		t.Run("bad/"+bad, func(t *testing.T) {
			loc, err := ParseLocationConstraint(bad)
			require.ErrorIs(t, err, ErrUnknownLocation)
			require.Equal(t, UnknownResiliency, loc.Resiliency)
		})
	}
	require.Equal(t, "Cross Region", CrossRegion.String())
	require.Equal(t, "Single Data Center", SingleSite.String())
	require.Equal(t, "Regional", Regional.String())
}

// locationServer answers GetBucketLocation with the constraint set for a
// bucket (gofakes3 always answers ""), and records CreateBucket headers.
type locationServer struct {
	mu          sync.Mutex
	constraints map[string]string
	created     map[string]http.Header
}

func (l *locationServer) wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		bucket := strings.Trim(r.URL.Path, "/")
		l.mu.Lock()
		c, ok := l.constraints[bucket]
		if r.Method == http.MethodPut && !strings.Contains(bucket, "/") {
			l.created[bucket] = r.Header.Clone()
		}
		l.mu.Unlock()
		if r.Method == http.MethodGet && r.URL.Query().Has("location") && ok {
			w.Header().Set("Content-Type", "application/xml")
			fmt.Fprintf(w, `<?xml version="1.0" encoding="UTF-8"?><LocationConstraint xmlns="http://s3.amazonaws.com/doc/2006-03-01/">%s</LocationConstraint>`, c)
			return
		}
		next.ServeHTTP(w, r)
	})
}

func TestCheckBucket(t *testing.T) {
	ls := &locationServer{
		constraints: map[string]string{
			"regional":   "us-south-smart",
			"onerate":    "us-south-onerate_active",
			"elsewhere":  "eu-de-standard",
			"cross":      "us-cold",
			"singlesite": "ams03-standard",
			"empty":      "",
			"odd":        "moon-standard",
		},
		created: map[string]http.Header{},
	}
	be := newFake(t, ls.wrap)
	for name := range ls.constraints {
		require.NoError(t, be.client.CreateBucket(t.Context(), name, BucketSpec{}))
	}
	cases := []struct {
		bucket, region string
		want           error
		res            Resiliency
	}{
		{"regional", "us-south", nil, Regional},
		{"regional", "", nil, Regional},
		{"onerate", "us-south", nil, Regional},
		{"elsewhere", "us-south", ErrRegionMismatch, Regional},
		{"cross", "us-south", ErrNotRegional, CrossRegion},
		{"singlesite", "us-south", ErrNotRegional, SingleSite},
		{"empty", "us-south", ErrUnknownLocation, UnknownResiliency},
		{"odd", "us-south", ErrUnknownLocation, UnknownResiliency},
		{"missing", "us-south", ErrBucketNotFound, UnknownResiliency},
	}
	for _, tc := range cases {
		t.Run(tc.bucket+"/"+tc.region, func(t *testing.T) {
			info, err := be.client.CheckBucket(t.Context(), tc.bucket, tc.region)
			require.NotNil(t, info)
			if tc.want == nil {
				require.NoError(t, err)
			} else {
				require.ErrorIs(t, err, tc.want)
			}
			require.Equal(t, tc.res, info.Location.Resiliency)
		})
	}
}

func TestCheckBucketVersitygw(t *testing.T) {
	be := newVersity(t, nil)
	bucket := mkBucket(t, be.client)
	info, err := be.client.CheckBucket(t.Context(), bucket, "us-south")
	require.NoError(t, err)
	require.Equal(t, Regional, info.Location.Resiliency)
	_, err = be.client.CheckBucket(t.Context(), bucket, "eu-de")
	require.ErrorIs(t, err, ErrRegionMismatch)
	_, err = be.client.CheckBucket(t.Context(), "no-such-bucket", "us-south")
	require.ErrorIs(t, err, ErrBucketNotFound)
}

func TestCreateBucketKeyProtect(t *testing.T) {
	ls := &locationServer{constraints: map[string]string{}, created: map[string]http.Header{}}
	be := newFake(t, ls.wrap)
	const crn = "crn:v1:bluemix:public:kms:us-south:a/acct:inst:key:root-1"
	require.NoError(t, be.client.CreateBucket(t.Context(), "kp-bucket", BucketSpec{RootKeyCRN: crn}))
	require.NoError(t, be.client.CreateBucket(t.Context(), "plain-bucket", BucketSpec{LocationConstraint: "us-south-vault"}))
	h := ls.created["kp-bucket"]
	require.Equal(t, "AES256", h.Get("ibm-sse-kp-encryption-algorithm"))
	require.Equal(t, crn, h.Get("ibm-sse-kp-customer-root-key-crn"))
	require.Empty(t, ls.created["plain-bucket"].Get("ibm-sse-kp-encryption-algorithm"))
	err := be.client.CreateBucket(t.Context(), "kp-bucket", BucketSpec{})
	require.Error(t, err, "the bucket exists already")
}

func FuzzParseLocationConstraint(f *testing.F) {
	for _, s := range []string{"us-south-standard", "eu-smart", "ams03-vault", "jp-tok-onerate_active", "us-south", "", "-", "us-south-", "\n  us-south-standard\n"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		loc, err := ParseLocationConstraint(s)
		if err != nil {
			require.ErrorIs(t, err, ErrUnknownLocation)
			require.Equal(t, UnknownResiliency, loc.Resiliency)
			return
		}
		require.Equal(t, strings.TrimSpace(s), loc.Constraint)
		require.NotEqual(t, UnknownResiliency, loc.Resiliency)
		want := loc.Location
		if loc.Class != "" {
			want += "-" + loc.Class
		}
		require.Equal(t, strings.ToLower(strings.TrimSpace(s)), want, "location and class put back together give the trimmed input")
	})
}
