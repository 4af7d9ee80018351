package slsim_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/IBM/ibm-cos-sdk-go/aws"
	"github.com/IBM/ibm-cos-sdk-go/aws/credentials"
	cossession "github.com/IBM/ibm-cos-sdk-go/aws/session"
	"github.com/IBM/ibm-cos-sdk-go/service/s3"
	kp "github.com/IBM/keyprotect-go-client"
	"github.com/softlayer/softlayer-go/datatypes"
	"github.com/softlayer/softlayer-go/services"
	"github.com/softlayer/softlayer-go/session"
	"github.com/softlayer/softlayer-go/sl"
	"github.com/stretchr/testify/require"

	"github.com/e2eimage/e2eimage/internal/cloudsim"
	"github.com/e2eimage/e2eimage/internal/cloudsim/slsim"
)

// These tests run the import backplane against the whole simulated cloud
// (cloudsim.Start): the real IAM, Key Protect, COS and Activity Tracker
// simulators instead of the stand-ins of harness_test.go.

func startCloud(t *testing.T, seedAuthz bool) *cloudsim.Sim {
	t.Helper()
	sim, err := cloudsim.Start(context.Background(), cloudsim.Options{Seed: 7, ClockSpeed: 6000, SeedAuthorizations: seedAuthz})
	require.NoError(t, err)
	t.Cleanup(func() { _ = sim.Close() })
	return sim
}

func keyIDOf(crn string) string { return crn[strings.LastIndex(crn, ":")+1:] }

// wrapDEK has Key Protect generate a 32-byte DEK under the account's root
// key and returns it raw with its wrapped form.
func wrapDEK(t *testing.T, sim *cloudsim.Sim) (dek []byte, wdek string) {
	t.Helper()
	c, err := kp.New(kp.ClientConfig{BaseURL: sim.URLs.KMS, APIKey: sim.Account.APIKey, TokenURL: sim.URLs.TokenURL(),
		InstanceID: sim.Account.KMSInstanceID}, kp.DefaultTransport())
	require.NoError(t, err)
	plain, wrapped, err := c.WrapCreateDEK(context.Background(), keyIDOf(sim.Account.RootKeyCRN), nil)
	require.NoError(t, err)
	dek, err = base64.StdEncoding.DecodeString(string(plain))
	require.NoError(t, err)
	return dek, string(wrapped)
}

func upload(t *testing.T, sim *cloudsim.Sim, key string, data []byte) {
	t.Helper()
	conf := aws.NewConfig().WithEndpoint(sim.URLs.S3).WithRegion(sim.Account.Region).WithS3ForcePathStyle(true).
		WithHTTPClient(&http.Client{Timeout: 30 * time.Second}).
		WithCredentials(credentials.NewStaticCredentials(sim.Account.S3AccessKey, sim.Account.S3SecretKey, ""))
	sess, err := cossession.NewSession(conf)
	require.NoError(t, err)
	_, err = s3.New(sess).PutObject(&s3.PutObjectInput{Bucket: aws.String(sim.Account.Bucket), Key: aws.String(key), Body: bytes.NewReader(data)})
	require.NoError(t, err)
}

func slSession(sim *cloudsim.Sim) *session.Session {
	return &session.Session{UserName: "apikey", APIKey: sim.Account.APIKey, Endpoint: sim.URLs.SoftLayer, Timeout: 30 * time.Second}
}

func importAndWait(t *testing.T, sim *cloudsim.Sim, key, wdek string) datatypes.Virtual_Guest_Block_Device_Template_Group {
	t.Helper()
	svc := services.GetVirtualGuestBlockDeviceTemplateGroupService(slSession(sim))
	g, err := svc.CreateFromIcos(&datatypes.Container_Virtual_Guest_Block_Device_Template_Configuration{
		Name: sl.String("e2e-" + key), Uri: sl.String("cos://" + sim.Account.Region + "/" + sim.Account.Bucket + "/" + key),
		IbmApiKey: sl.String(sim.Account.APIKey), OperatingSystemReferenceCode: sl.String("UBUNTU_24_64"),
		IsEncrypted: sl.Bool(true), CrkCrn: sl.String(sim.Account.RootKeyCRN), WrappedDek: sl.String(wdek),
	})
	require.NoError(t, err)
	var out datatypes.Virtual_Guest_Block_Device_Template_Group
	waitFor(t, sim.SoftLayer, "the import", func() bool {
		out, err = svc.Id(*g.Id).Mask("mask[id,globalIdentifier,status,children[transactionId,blockDevices]]").GetObject()
		require.NoError(t, err)
		return importEnded(out)
	})
	return out
}

func TestCloudsimEncryptedImportAndOrder(t *testing.T) {
	t.Parallel()
	sim := startCloud(t, true)
	dek, wdek := wrapDEK(t, sim)
	upload(t, sim, "web.vhd-0.vhd", makeVHD(t, linuxDisk(t), dek))

	g := importAndWait(t, sim, "web.vhd-0.vhd", wdek)
	require.Equal(t, slsim.TemplateStatusActive, *g.Status.KeyName, deref(g.Status.Description))
	var checked []string
	for _, ti := range sim.SoftLayer.Templates() {
		if ti.ParentID == 0 && ti.GlobalIdentifier == *g.GlobalIdentifier {
			checked = append(checked, ti.ImageCheck)
		}
	}
	require.Len(t, checked, 1)
	require.True(t, strings.HasPrefix(checked[0], "checked: "), "the sample disk's contents were checked: %s", checked[0])

	vs := services.GetVirtualGuestService(slSession(sim))
	vg, err := vs.CreateObject(guestTemplate(*g.GlobalIdentifier))
	require.NoError(t, err)
	waitFor(t, sim.SoftLayer, "provisioning", func() bool {
		o, err := vs.Id(*vg.Id).Mask("provisionDate").GetObject()
		require.NoError(t, err)
		return o.ProvisionDate != nil
	})

	// Activity Tracker holds the backplane's unwrap (made with the
	// import's API key) and the classic events.
	actions := map[string]bool{}
	for _, e := range sim.Events.Events() {
		actions[e.Action+"/"+e.Outcome] = true
	}
	require.True(t, actions["kms.secrets.unwrap/success"], "events: %v", actions)
	require.True(t, actions[slsim.ActionTemplateCreate+"/success"], "events: %v", actions)
	require.True(t, actions[slsim.ActionProvision+"/success"], "events: %v", actions)
	require.True(t, actions[slsim.ActionBoot+"/success"], "events: %v", actions)
}

func TestCloudsimImportFailures(t *testing.T) {
	t.Run("no authorization", func(t *testing.T) {
		sim := startCloud(t, false) // a fresh account without server-protect -> kms
		dek, wdek := wrapDEK(t, sim)
		upload(t, sim, "a.vhd", makeVHD(t, linuxDisk(t), dek))
		g := importAndWait(t, sim, "a.vhd", wdek)
		require.Equal(t, slsim.TemplateStatusError, *g.Status.KeyName)
		require.True(t, strings.HasPrefix(*g.Status.Description, slsim.ReasonNoAuthorization+" kms"), *g.Status.Description)
	})
	t.Run("disabled root key", func(t *testing.T) {
		sim := startCloud(t, true)
		dek, wdek := wrapDEK(t, sim)
		upload(t, sim, "b.vhd", makeVHD(t, linuxDisk(t), dek))
		c, err := kp.New(kp.ClientConfig{BaseURL: sim.URLs.KMS, APIKey: sim.Account.APIKey, TokenURL: sim.URLs.TokenURL(),
			InstanceID: sim.Account.KMSInstanceID}, kp.DefaultTransport())
		require.NoError(t, err)
		err = c.DisableKey(context.Background(), keyIDOf(sim.Account.RootKeyCRN))
		require.NoError(t, err)
		g := importAndWait(t, sim, "b.vhd", wdek)
		require.Equal(t, slsim.TemplateStatusError, *g.Status.KeyName)
		require.True(t, strings.HasPrefix(*g.Status.Description, slsim.ReasonKeyNotActive), *g.Status.Description)
	})
	t.Run("wrong DEK", func(t *testing.T) {
		sim := startCloud(t, true)
		_, wdek := wrapDEK(t, sim)
		other, _ := wrapDEK(t, sim)
		upload(t, sim, "c.vhd", makeVHD(t, linuxDisk(t), other))
		g := importAndWait(t, sim, "c.vhd", wdek)
		require.Equal(t, slsim.TemplateStatusError, *g.Status.KeyName)
		require.True(t, strings.HasPrefix(*g.Status.Description, slsim.ReasonDEKMismatch), *g.Status.Description)
	})
	t.Run("cross-region bucket", func(t *testing.T) {
		sim := startCloud(t, true)
		svc := services.GetVirtualGuestBlockDeviceTemplateGroupService(slSession(sim))
		g, err := svc.CreateFromIcos(&datatypes.Container_Virtual_Guest_Block_Device_Template_Configuration{
			Name: sl.String("x"), Uri: sl.String("cos://" + sim.Account.Region + "/" + cloudsim.CrossRegionBucket + "/x.vhd"),
			IbmApiKey: sl.String(sim.Account.APIKey), OperatingSystemReferenceCode: sl.String("DEBIAN_12_64"),
		})
		require.NoError(t, err)
		var out datatypes.Virtual_Guest_Block_Device_Template_Group
		waitFor(t, sim.SoftLayer, "the import", func() bool {
			out, err = svc.Id(*g.Id).Mask("mask[status,children[transactionId,blockDevices]]").GetObject()
			require.NoError(t, err)
			return importEnded(out)
		})
		require.True(t, strings.HasPrefix(*out.Status.Description, slsim.ReasonBucketNotRegional), *out.Status.Description)
	})
}
