package cloudsim

import (
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/e2eimage/e2eimage/internal/cloudsim/atsim"
	"github.com/e2eimage/e2eimage/internal/cloudsim/kmssim"
	"github.com/e2eimage/e2eimage/internal/cloudsim/s3sim"
	"github.com/e2eimage/e2eimage/internal/cloudsim/slsim"
)

// Seeded test buckets besides Account.Bucket (which is Regional, in the
// account's region): one Cross Region bucket in the region's geography and
// one Single Site bucket, for resiliency checks.
const (
	CrossRegionBucket = "cloudsim-cross-region"
	SingleSiteBucket  = "cloudsim-single-site"
	// SingleSiteLocation is the Single Site bucket's location constraint.
	SingleSiteLocation = "ams03-standard"
)

// crossRegionOf returns the Cross Region location (us, eu, ap) of a region.
func crossRegionOf(region string) string {
	switch {
	case strings.HasPrefix(region, "eu-"):
		return "eu"
	case strings.HasPrefix(region, "jp-"), strings.HasPrefix(region, "au-"), strings.HasPrefix(region, "in-"):
		return "ap"
	}
	return "us"
}

// buildHandlers creates every service and returns its HTTP handler by
// service name. s.URLs is already set.
func (s *Sim) buildHandlers(opts Options) (map[string]http.Handler, error) {
	var err error
	s.S3, err = s3sim.New(s3sim.Config{
		AccountID: s.Account.AccountID, InstanceID: s.Account.COSInstanceID, InstanceCRN: s.Account.COSInstanceCRN,
		Region: opts.Region, Identity: s.IAM, Authz: s.IAM, KeyServices: []*kmssim.Server{s.KMS, s.HPCS},
		Events: s.Events, Clock: s.Clock, Logger: s.log,
	})
	if err != nil {
		return nil, fmt.Errorf("cloudsim: starting Cloud Object Storage: %w", err)
	}
	s.extra = append(s.extra, s.S3.Close)
	s.S3.AddHMAC(s.Account.S3AccessKey, s.Account.S3SecretKey, s.IAM.Owner())
	for _, b := range []struct{ name, loc string }{
		{s.Account.Bucket, opts.Region + "-standard"},
		{CrossRegionBucket, crossRegionOf(opts.Region) + "-standard"},
		{SingleSiteBucket, SingleSiteLocation},
	} {
		if err := s.S3.CreateBucket(b.name, b.loc); err != nil {
			return nil, fmt.Errorf("cloudsim: seeding buckets: %w", err)
		}
	}

	// The backplane's own HTTP client, so that Close can drop its idle
	// connections.
	tr := &http.Transport{Proxy: nil, MaxIdleConnsPerHost: 8, IdleConnTimeout: 30 * time.Second}
	s.extra = append(s.extra, func() error { tr.CloseIdleConnections(); return nil })
	s.SoftLayer, err = slsim.New(slsim.Config{
		IAMTokenURL: s.URLs.TokenURL(), S3URL: s.URLs.S3, KMSURL: s.URLs.KMS, HPCSURL: s.URLs.HPCS,
		Identity: s.IAM, Authz: s.IAM, Events: s.Events, Clock: s.Clock, Logger: s.log, Region: opts.Region,
		HTTPClient: &http.Client{Transport: tr, Timeout: 60 * time.Second},
	})
	if err != nil {
		return nil, fmt.Errorf("cloudsim: starting SoftLayer: %w", err)
	}
	s.before = append(s.before, s.SoftLayer.Close)
	if err := s.seedSampleTemplate(); err != nil {
		return nil, err
	}

	iam := s.IAM.Handler()
	return map[string]http.Handler{
		ServiceIAM:         iam,
		ServiceIAMIdentity: iam,
		ServiceIAMPolicy:   iam,
		ServiceKMS:         s.KMS.Handler(),
		ServiceHPCS:        s.HPCS.Handler(),
		ServiceS3:          s.S3.Handler(),
		ServiceSoftLayer:   s.SoftLayer.Handler(),
		ServiceActivityTracker: s.Events.Handler(atsim.HandlerConfig{
			AccountID: s.Account.AccountID, Identity: s.IAM, Authz: s.IAM,
		}),
	}, nil
}
