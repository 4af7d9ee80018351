package cloudsim_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/IBM/go-sdk-core/v5/core"
	"github.com/IBM/ibm-cos-sdk-go/aws"
	"github.com/IBM/ibm-cos-sdk-go/aws/awserr"
	"github.com/IBM/ibm-cos-sdk-go/aws/credentials/ibmiam"
	"github.com/IBM/ibm-cos-sdk-go/aws/session"
	"github.com/IBM/ibm-cos-sdk-go/service/s3"
	"github.com/IBM/ibm-cos-sdk-go/service/s3/s3manager"
	kp "github.com/IBM/keyprotect-go-client"
	"github.com/IBM/platform-services-go-sdk/iamidentityv1"
	"github.com/IBM/platform-services-go-sdk/iampolicymanagementv1"
	"github.com/softlayer/softlayer-go/services"
	slsession "github.com/softlayer/softlayer-go/session"
	"github.com/stretchr/testify/require"

	"github.com/e2eimage/e2eimage/internal/cloudsim"
	"github.com/e2eimage/e2eimage/internal/cloudsim/atsim"
	"github.com/e2eimage/e2eimage/internal/cloudsim/s3sim"
	"github.com/e2eimage/e2eimage/internal/faults"
)

// TestIAMSetupThroughSDKs does what an operator does to prepare an account
// for the E2E flow, with the platform-services SDK pointed at the
// simulator: a service ID, its API key, the S2S authorization and access
// policies; then it uses the new key against Key Protect.
func TestIAMSetupThroughSDKs(t *testing.T) {
	sim := start(t, cloudsim.Options{})
	acct := sim.Account.AccountID
	auth, err := core.NewIamAuthenticatorBuilder().SetApiKey(sim.Account.APIKey).SetURL(sim.URLs.IAM).Build()
	require.NoError(t, err)
	id, err := iamidentityv1.NewIamIdentityV1(&iamidentityv1.IamIdentityV1Options{URL: sim.URLs.IAMIdentity, Authenticator: auth})
	require.NoError(t, err)
	pol, err := iampolicymanagementv1.NewIamPolicyManagementV1(&iampolicymanagementv1.IamPolicyManagementV1Options{URL: sim.URLs.IAMPolicy, Authenticator: auth})
	require.NoError(t, err)

	sid, _, err := id.CreateServiceID(id.NewCreateServiceIDOptions(acct, "e2e-importer"))
	require.NoError(t, err)
	key, _, err := id.CreateAPIKey(id.NewCreateAPIKeyOptions("e2e-importer-key", *sid.IamID).SetAccountID(acct))
	require.NoError(t, err)

	authz := pol.NewCreatePolicyOptions("authorization",
		[]iampolicymanagementv1.PolicySubject{{Attributes: []iampolicymanagementv1.SubjectAttribute{
			{Name: core.StringPtr("accountId"), Value: core.StringPtr(acct)},
			{Name: core.StringPtr("serviceName"), Value: core.StringPtr("server-protect")},
		}}},
		[]iampolicymanagementv1.PolicyRole{{RoleID: core.StringPtr("crn:v1:bluemix:public:iam::::serviceRole:Reader")}},
		[]iampolicymanagementv1.PolicyResource{{Attributes: []iampolicymanagementv1.ResourceAttribute{
			{Name: core.StringPtr("accountId"), Value: core.StringPtr(acct), Operator: core.StringPtr("stringEquals")},
			{Name: core.StringPtr("serviceName"), Value: core.StringPtr("kms"), Operator: core.StringPtr("stringEquals")},
			{Name: core.StringPtr("serviceInstance"), Value: core.StringPtr(sim.Account.KMSInstanceID), Operator: core.StringPtr("stringEquals")},
		}}})
	_, _, err = pol.CreatePolicy(authz)
	require.NoError(t, err)
	require.True(t, sim.IAM.HasAuthorization(acct, "server-protect", "kms", sim.Account.KMSInstanceID))
	_, resp, err := pol.CreatePolicy(authz)
	require.Error(t, err)
	require.Equal(t, http.StatusConflict, resp.StatusCode)
	b, _ := json.Marshal(resp.Result)
	require.Contains(t, string(b), "policy_conflict_error")

	for _, svc := range []struct{ name, inst string }{{"kms", sim.Account.KMSInstanceID}, {"cloud-object-storage", sim.Account.COSInstanceID}} {
		_, _, err = pol.CreatePolicy(pol.NewCreatePolicyOptions("access",
			[]iampolicymanagementv1.PolicySubject{{Attributes: []iampolicymanagementv1.SubjectAttribute{
				{Name: core.StringPtr("iam_id"), Value: sid.IamID},
			}}},
			[]iampolicymanagementv1.PolicyRole{{RoleID: core.StringPtr("crn:v1:bluemix:public:iam::::serviceRole:Reader")}},
			[]iampolicymanagementv1.PolicyResource{{Attributes: []iampolicymanagementv1.ResourceAttribute{
				{Name: core.StringPtr("accountId"), Value: core.StringPtr(acct)},
				{Name: core.StringPtr("serviceName"), Value: core.StringPtr(svc.name)},
				{Name: core.StringPtr("serviceInstance"), Value: core.StringPtr(svc.inst)},
			}}}))
		require.NoError(t, err)
	}
	list, _, err := pol.ListPolicies(pol.NewListPoliciesOptions(acct).SetIamID(*sid.IamID))
	require.NoError(t, err)
	require.Len(t, list.Policies, 2)

	// The service ID's key now works against Key Protect.
	c, err := kp.New(kp.ClientConfig{BaseURL: sim.URLs.KMS, APIKey: *key.Apikey, TokenURL: sim.URLs.TokenURL(), InstanceID: sim.Account.KMSInstanceID}, kp.DefaultTransport())
	require.NoError(t, err)
	keyID := sim.Account.RootKeyCRN[strings.LastIndexByte(sim.Account.RootKeyCRN, ':')+1:]
	_, _, err = c.WrapCreateDEK(context.Background(), keyID, nil)
	require.NoError(t, err)
	evs := sim.Events.Find(atsim.Filter{Action: "kms.secrets.wrap"})
	require.Len(t, evs, 1)
	require.Equal(t, *sid.IamID, evs[0].Initiator.ID)
}

func cosClient(t *testing.T, sim *cloudsim.Sim, tr *http.Transport) *s3.S3 {
	t.Helper()
	creds := ibmiam.NewStaticCredentials(aws.NewConfig(), sim.URLs.TokenURL(), sim.Account.APIKey, sim.Account.COSInstanceCRN)
	conf := aws.NewConfig().WithRegion(sim.Account.Region).WithEndpoint(sim.URLs.S3).WithS3ForcePathStyle(true).
		WithCredentials(creds).WithHTTPClient(&http.Client{Transport: tr})
	sess, err := session.NewSession(conf)
	require.NoError(t, err)
	return s3.New(sess)
}

// TestCOSThroughSDK drives the COS simulator with ibm-cos-sdk-go and IAM
// credentials from the simulated token URL.
func TestCOSThroughSDK(t *testing.T) {
	sim := start(t, cloudsim.Options{})
	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	c := cosClient(t, sim, tr)
	ctx := context.Background()

	for bucket, want := range map[string]string{
		sim.Account.Bucket:         "us-south-standard",
		cloudsim.CrossRegionBucket: "us-standard",
		cloudsim.SingleSiteBucket:  cloudsim.SingleSiteLocation,
	} {
		out, err := c.GetBucketLocation(&s3.GetBucketLocationInput{Bucket: aws.String(bucket)})
		require.NoError(t, err, bucket)
		require.Equal(t, want, aws.StringValue(out.LocationConstraint), bucket)
	}
	require.Equal(t, s3sim.CrossRegion, s3sim.Resiliency("us-standard"))

	_, err := c.CreateBucket(&s3.CreateBucketInput{Bucket: aws.String("e2e-new"), CreateBucketConfiguration: &s3.CreateBucketConfiguration{LocationConstraint: aws.String("us-south-smart")}})
	require.NoError(t, err)

	// A 21 MiB image in 5 MiB parts, four in flight, with one part failing
	// with a 500 and one connection reset mid-part: the SDK retries both.
	data := make([]byte, 21<<20+7)
	_, _ = rand.Read(data)
	sim.Faults.Add(faults.Rule{Service: cloudsim.ServiceS3, Method: http.MethodPut, QueryContains: "partNumber=2", Kind: faults.Status, Status: 500, Count: 1})
	sim.Faults.Add(faults.Rule{Service: cloudsim.ServiceS3, Method: http.MethodPut, QueryContains: "partNumber=3", Kind: faults.Reset, AfterBytes: 1 << 20, Count: 1})
	up := s3manager.NewUploaderWithClient(c, func(u *s3manager.Uploader) { u.PartSize = 5 << 20; u.Concurrency = 4 })
	_, err = up.UploadWithContext(ctx, &s3manager.UploadInput{Bucket: aws.String("e2e-new"), Key: aws.String("img.vhd-0.vhd"), Body: bytes.NewReader(data)})
	require.NoError(t, err)
	require.Equal(t, 2, sim.Faults.Counts()[cloudsim.ServiceS3])
	got, err := c.GetObjectWithContext(ctx, &s3.GetObjectInput{Bucket: aws.String("e2e-new"), Key: aws.String("img.vhd-0.vhd")})
	require.NoError(t, err)
	h := sha256.New()
	_, err = io.Copy(h, got.Body)
	got.Body.Close()
	require.NoError(t, err)
	want := sha256.Sum256(data)
	require.Equal(t, want[:], h.Sum(nil))

	// An upload left behind is listed, then aborted.
	cr, err := c.CreateMultipartUpload(&s3.CreateMultipartUploadInput{Bucket: aws.String("e2e-new"), Key: aws.String("left.vhd")})
	require.NoError(t, err)
	_, err = c.UploadPart(&s3.UploadPartInput{Bucket: aws.String("e2e-new"), Key: aws.String("left.vhd"), UploadId: cr.UploadId, PartNumber: aws.Int64(1), Body: bytes.NewReader(data[:1<<20])})
	require.NoError(t, err)
	lu, err := c.ListMultipartUploads(&s3.ListMultipartUploadsInput{Bucket: aws.String("e2e-new")})
	require.NoError(t, err)
	require.Len(t, lu.Uploads, 1)
	require.Equal(t, 1, sim.S3.PendingUploads("e2e-new"))
	_, err = c.AbortMultipartUpload(&s3.AbortMultipartUploadInput{Bucket: aws.String("e2e-new"), Key: aws.String("left.vhd"), UploadId: cr.UploadId})
	require.NoError(t, err)
	require.Zero(t, sim.S3.PendingUploads("e2e-new"))

	// Bucket encryption with the HPCS root key needs the S2S authorization.
	enc := &s3.CreateBucketInput{Bucket: aws.String("e2e-hpcs"), IBMSSEKPEncryptionAlgorithm: aws.String("AES256"), IBMSSEKPCustomerRootKeyCrn: aws.String(sim.Account.HPCSRootKeyCRN)}
	_, err = c.CreateBucket(enc)
	var ae awserr.Error
	require.True(t, errors.As(err, &ae))
	require.Contains(t, ae.Message(), "The Key CRN could not be found")
	sim.IAM.AddAuthorization("cloud-object-storage", "hs-crypto", sim.Account.HPCSInstanceID)
	_, err = c.CreateBucket(enc)
	require.NoError(t, err)
	head, err := c.HeadBucket(&s3.HeadBucketInput{Bucket: aws.String("e2e-hpcs")})
	require.NoError(t, err)
	require.True(t, aws.BoolValue(head.IBMSSEKPEnabled))
	require.Equal(t, sim.Account.HPCSRootKeyCRN, aws.StringValue(head.IBMSSEKPCrkId))
	require.Len(t, sim.Events.Find(atsim.Filter{Action: "cloud-object-storage.bucket.create"}), 2)
}

// TestSoftLayerIsWired checks that the SoftLayer URL serves the simulated
// classic API with IAM API key authentication.
func TestSoftLayerIsWired(t *testing.T) {
	sim := start(t, cloudsim.Options{})
	sess := &slsession.Session{UserName: "apikey", APIKey: sim.Account.APIKey, Endpoint: sim.URLs.SoftLayer, Timeout: 10 * time.Second}
	groups, err := services.GetAccountService(sess).GetPrivateBlockDeviceTemplateGroups()
	require.NoError(t, err)
	require.Len(t, groups, 1, "a fresh account holds the sample template only")
	require.Equal(t, cloudsim.SampleTemplate, *groups[0].Name)
	bad := &slsession.Session{UserName: "apikey", APIKey: "not-a-key", Endpoint: sim.URLs.SoftLayer, Timeout: 10 * time.Second}
	_, err = services.GetAccountService(bad).GetPrivateBlockDeviceTemplateGroups()
	require.Error(t, err)
}
