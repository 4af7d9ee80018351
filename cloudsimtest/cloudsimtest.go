// Package cloudsimtest runs a simulated IBM Cloud inside a Go program, for
// the tests of code that uses this SDK: IAM, Key Protect, Hyper Protect
// Crypto Services, Cloud Object Storage, the classic infrastructure
// (SoftLayer) API and an Activity Tracker (Cloud Logs) query endpoint, each
// on its own loopback port, with a fresh account in which the whole E2E
// flow (e2e.Run) works: an API key, a Key Protect root key, a Regional
// bucket, a COS instance and a standard image template to export
// (SampleTemplate).
//
// In a test, Start starts one for testing.TB and closes it when the test
// ends; New and Close do the same by hand. The simulated cloud is this
// module's picture of IBM Cloud, drawn from IBM's documentation, not IBM
// Cloud: what it implements, and which of its behaviours are invented where
// IBM documents none, is listed in the module's internal/cloudsim/README.md.
// Code that passes against it may still meet a difference on IBM Cloud; the
// examples/e2e -check command asks a real account.
//
// Nothing leaves the machine: the services listen on 127.0.0.1 only, and
// the API key and the other credentials are fake ones of the simulator.
// The account is derived from Options.Seed (identifiers, names), except
// what must be unpredictable (token signing keys, key material).
//
// The package is a thin, stable face over the simulator, which stays
// internal so that its many knobs (fault injection, per-service state) can
// change without breaking other modules.
package cloudsimtest

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/e2eimage/e2eimage/e2e/ibmcloud"
	"github.com/e2eimage/e2eimage/internal/cloudsim"
	"github.com/e2eimage/e2eimage/internal/cloudsim/simcore"
	"github.com/e2eimage/e2eimage/internal/cloudsim/slsim"
	"github.com/e2eimage/e2eimage/internal/sampleimage"
	"github.com/e2eimage/e2eimage/secret"
)

// DefaultClockSpeed is the simulated clock's speed when Options.ClockSpeed
// is zero: 1000 simulated seconds per real second, so that an image import
// (minutes on IBM Cloud) takes a fraction of a second, as with
// examples/cloudsim.
const DefaultClockSpeed = 1000

// SampleTemplate is the name of the standard (unencrypted) image template
// every fresh account holds: its export writes an Ubuntu 22.04-like disk
// (operating system code UBUNTU_22_64) that the image doctor passes, so
// that a plan starting from an existing template (e2e.Plan.SourceTemplate)
// runs against the simulated cloud.
const SampleTemplate = cloudsim.SampleTemplate

// Options configures New and Start. The zero value is a fresh account with
// a fast clock.
type Options struct {
	// Seed derives the account's identifiers and names; two clouds with
	// the same seed have the same account, bucket and key identifiers.
	Seed int64
	// ClockSpeed is simulated seconds per real second (0:
	// DefaultClockSpeed; 1: real time).
	ClockSpeed float64
	// SeedAuthorizations creates, before any request, the service-to-
	// service authorizations an E2E import needs (server-protect to kms and
	// to hs-crypto, Reader), as in an account where they were made once by
	// hand. Without it, the account lacks them, as a new account does, and
	// a plan must create them (e2e.Plan.Prepare).
	SeedAuthorizations bool
	// Templates are standard image templates added to the account besides
	// SampleTemplate, for code that exports a template or starts from one.
	Templates []Template
}

// Template is a standard (unencrypted) image template that exists in the
// account before any request.
type Template struct {
	// Name is the template's name. Required.
	Name string
	// OSCode is the operating system reference code of its boot disk, such
	// as UBUNTU_22_64. Required.
	OSCode string
	// Disk is the raw disk image of its boot disk; an export
	// (copyToIcos) writes it to the bucket as a dynamic VHD. Its size must
	// be a multiple of 512 bytes. Required.
	Disk []byte
}

// Cloud is a running simulated IBM Cloud and its account.
type Cloud struct {
	// Endpoints are the services' URLs, as ibmcloud.Config takes them.
	Endpoints ibmcloud.Endpoints
	// APIKey is the account owner's API key (a fake credential of the
	// simulator).
	APIKey string
	// AccountID is the IBM Cloud account's id.
	AccountID string
	// Region is the account's region (us-south).
	Region string
	// RootKeyCRN is a Key Protect root key, Active; HPCSRootKeyCRN is an
	// HPCS one.
	RootKeyCRN, HPCSRootKeyCRN string
	// Bucket is a Regional bucket in Region.
	Bucket string
	// COSInstanceCRN and COSInstanceID name the COS instance that holds
	// Bucket (its CRN and its GUID).
	COSInstanceCRN, COSInstanceID string
	// Clock is the simulated clock, which dates the resources and the
	// audit events and drives the imports and provisioning. A plan run
	// against this cloud takes Clock.Now as e2e.Plan.Clock, so that its
	// audit window is the cloud's time.
	Clock *Clock

	sim *cloudsim.Sim
}

// Clock is the simulated cloud's clock: it runs at Options.ClockSpeed and
// can be moved forward.
type Clock struct{ c *simcore.Clock }

// Now returns the simulated time.
func (c *Clock) Now() time.Time { return c.c.Now() }

// Advance moves the simulated time forward by d, at once, for code that
// looks at dates, such as key expiry or a purge window. An import or a
// provisioning already under way still takes its own (simulated) time.
func (c *Clock) Advance(d time.Duration) { c.c.Advance(d) }

// New starts a simulated cloud with a fresh account. Close stops it.
func New(opts Options) (*Cloud, error) {
	speed := opts.ClockSpeed
	if speed == 0 {
		speed = DefaultClockSpeed
	}
	if speed < 0 {
		return nil, fmt.Errorf("cloudsimtest: ClockSpeed %v is negative", speed)
	}
	for i, t := range opts.Templates {
		switch {
		case t.Name == "" || t.OSCode == "":
			return nil, fmt.Errorf("cloudsimtest: Templates[%d] needs a Name and an OSCode", i)
		case len(t.Disk) == 0 || len(t.Disk)%512 != 0:
			return nil, fmt.Errorf("cloudsimtest: Templates[%d] (%s): the disk is %d bytes, not a non-zero multiple of 512", i, t.Name, len(t.Disk))
		}
	}
	sim, err := cloudsim.Start(context.Background(), cloudsim.Options{
		Seed: opts.Seed, ClockSpeed: speed, SeedAuthorizations: opts.SeedAuthorizations,
	})
	if err != nil {
		return nil, fmt.Errorf("cloudsimtest: starting the simulated cloud: %w", err)
	}
	for _, t := range opts.Templates {
		export, err := cloudsim.DynamicVHD(t.Disk)
		if err == nil {
			_, err = sim.SoftLayer.SeedTemplate(sim.Account.AccountID, slsim.SeedSpec{
				Name: t.Name, OSCode: t.OSCode,
				Disks: []slsim.SeedDisk{{Export: export, VirtualSize: int64(len(t.Disk))}},
			})
		}
		if err != nil {
			return nil, errors.Join(fmt.Errorf("cloudsimtest: adding template %s: %w", t.Name, err), sim.Close())
		}
	}
	u, a := sim.URLs, sim.Account
	return &Cloud{
		Endpoints: ibmcloud.Endpoints{
			IAM: u.IAM, IAMIdentity: u.IAMIdentity, IAMPolicy: u.IAMPolicy,
			KMS: u.KMS, HPCS: u.HPCS, S3: u.S3, SoftLayer: u.SoftLayer, ActivityTracker: u.ActivityTracker,
		},
		APIKey: a.APIKey, AccountID: a.AccountID, Region: a.Region,
		RootKeyCRN: a.RootKeyCRN, HPCSRootKeyCRN: a.HPCSRootKeyCRN, Bucket: a.Bucket,
		COSInstanceCRN: a.COSInstanceCRN, COSInstanceID: a.COSInstanceID,
		Clock: &Clock{sim.Clock}, sim: sim,
	}, nil
}

// Start starts a simulated cloud for a test and closes it when the test and
// its subtests end (tb.Cleanup). It fails the test when the cloud does not
// start or does not stop cleanly.
func Start(tb testing.TB, opts Options) *Cloud {
	tb.Helper()
	c, err := New(opts)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		if err := c.Close(); err != nil {
			tb.Errorf("cloudsimtest: %v", err)
		}
	})
	return c
}

// Close stops every service and waits for their requests in flight. It is
// safe to call more than once.
func (c *Cloud) Close() error { return c.sim.Close() }

// Config returns what ibmcloud.Connect needs to reach this cloud with the owner's
// API key: the endpoints, the key, the root key, the COS instance and, for
// the fast clock, short polling intervals.
func (c *Cloud) Config() ibmcloud.Config {
	return ibmcloud.Config{
		APIKey: secret.NewString(c.APIKey), RootKeyCRN: c.RootKeyCRN, Region: c.Region,
		COSInstance: c.COSInstanceCRN, Endpoints: c.Endpoints,
		PollMin: 5 * time.Millisecond, PollMax: 50 * time.Millisecond,
	}
}

// SampleImage writes a small raw disk image that the simulated import
// accepts and the image doctor passes (an MBR, an Ubuntu 22.04-like ext4
// root file system with cloud-init and its ConfigDrive data source;
// operating system code UBUNTU_22_64) to a new file in a temporary
// directory of tb, and returns its path.
func SampleImage(tb testing.TB) string {
	tb.Helper()
	path := filepath.Join(tb.TempDir(), "sample.raw")
	if err := sampleimage.WriteFile(path, sampleimage.Options{Seed: 1}); err != nil {
		tb.Fatalf("cloudsimtest: writing the sample image: %v", err)
	}
	return path
}
