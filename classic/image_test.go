package classic

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/e2eimage/e2eimage/secret"
)

func millis(n int) time.Duration { return time.Duration(n) * time.Millisecond }

const (
	testCOSKey = "cos-service-id-key-fedcba9876543210"
	testCRN    = "crn:v1:bluemix:public:kms:us-south:a/0123456789abcdef0123456789abcdef:5ef6cebe-26d7-4ef3-abdc-fb50f336780f:key:a9640391-aec5-4c86-8942-6e6c47bb40b5"
)

var testWDEK = base64.StdEncoding.EncodeToString([]byte("wrapped dek ciphertext"))

func goodImport() ImportRequest {
	return ImportRequest{
		Name:           "e2e-ubuntu",
		Note:           "test",
		URI:            "cos://us-south/images/ubuntu.vhd-0.vhd",
		APIKey:         secret.NewString(testCOSKey),
		OSCode:         "UBUNTU_22_64",
		DiskSize:       25 << 30,
		BucketLocation: "us-south-standard",
		Encryption:     &Encryption{RootKeyCRN: testCRN, WrappedDEK: testWDEK},
	}
}

func serveOSCodes(f *fakeSL) {
	f.on("SoftLayer_Virtual_Guest_Block_Device_Template_Group::getVhdImportSoftwareDescriptions", func(fakeReq) (int, any) {
		return 200, []map[string]any{
			{"referenceCode": "UBUNTU_22_64", "name": "Ubuntu", "version": "22.04-64"},
			{"referenceCode": "REDHAT_9_64", "name": "Red Hat Enterprise Linux", "version": "9-64"},
		}
	})
}

func TestValidationRejectsBeforeAnyRequest(t *testing.T) {
	t.Parallel()
	f := newFakeSL(t)
	serveOSCodes(f)
	c := newTestClient(t, f)
	cases := []struct {
		name  string
		edit  func(*ImportRequest)
		field string
	}{
		{"empty name", func(r *ImportRequest) { r.Name = " " }, "Name"},
		{"control char in name", func(r *ImportRequest) { r.Name = "a\nb" }, "Name"},
		{"not a cos URI", func(r *ImportRequest) { r.URI = "s3://us-south/b/x.vhd" }, "URI"},
		{"no object", func(r *ImportRequest) { r.URI = "cos://us-south/images/" }, "URI"},
		{"bad bucket name", func(r *ImportRequest) { r.URI = "cos://us-south/Images_1/x.vhd" }, "URI"},
		{"not an import region", func(r *ImportRequest) { r.URI = "cos://br-sao/images/x.vhd" }, "URI"},
		{"encrypted qcow2", func(r *ImportRequest) { r.URI = "cos://us-south/images/x.qcow2" }, "URI"},
		{"encrypted vmdk", func(r *ImportRequest) { r.URI = "cos://us-south/images/x.vmdk" }, "URI"},
		{"plain raw", func(r *ImportRequest) { r.Encryption = nil; r.URI = "cos://us-south/images/x.raw" }, "URI"},
		{"no API key", func(r *ImportRequest) { r.APIKey = nil }, "APIKey"},
		{"disk too big", func(r *ImportRequest) { r.DiskSize = MaxImportDiskSize + 512 }, "DiskSize"},
		{"negative disk", func(r *ImportRequest) { r.DiskSize = -1 }, "DiskSize"},
		{"no OS code", func(r *ImportRequest) { r.OSCode = "" }, "OSCode"},
		{"encrypted Windows with BYOL", func(r *ImportRequest) { r.OSCode = "WIN_2019-STD_64"; r.BYOL = true }, "BYOL"},
		{"CRN not a CRN", func(r *ImportRequest) { r.Encryption.RootKeyCRN = "key-guid" }, "Encryption.RootKeyCRN"},
		{"CRN of another service", func(r *ImportRequest) {
			r.Encryption.RootKeyCRN = strings.Replace(testCRN, ":kms:", ":cloud-object-storage:", 1)
		}, "Encryption.RootKeyCRN"},
		{"CRN in another region", func(r *ImportRequest) {
			r.Encryption.RootKeyCRN = strings.Replace(testCRN, ":us-south:", ":eu-de:", 1)
		}, "Encryption.RootKeyCRN"},
		{"no WDEK", func(r *ImportRequest) { r.Encryption.WrappedDEK = "" }, "Encryption.WrappedDEK"},
		{"WDEK not base64", func(r *ImportRequest) { r.Encryption.WrappedDEK = "not*base64" }, "Encryption.WrappedDEK"},
		{"cross-region bucket", func(r *ImportRequest) { r.BucketLocation = "us-standard" }, "BucketLocation"},
		{"single-site bucket", func(r *ImportRequest) { r.BucketLocation = "ams03-smart" }, "BucketLocation"},
		{"bucket in another region", func(r *ImportRequest) { r.BucketLocation = "us-east-standard" }, "BucketLocation"},
		{"unreadable location", func(r *ImportRequest) { r.BucketLocation = "???" }, "BucketLocation"},
		{"location unknown", func(r *ImportRequest) { r.BucketLocation = "" }, "BucketLocation"},
		{"locator says cross-region", func(r *ImportRequest) {
			r.BucketLocation = ""
			r.BucketLocator = func(context.Context, string, string) (string, error) { return "us-cold", nil }
		}, "BucketLocation"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			req := goodImport()
			enc := *req.Encryption
			req.Encryption = &enc
			tc.edit(&req)
			tmpl, err := c.Import(context.Background(), req)
			require.Nil(t, tmpl)
			require.ErrorIs(t, err, ErrInvalidImportRequest)
			var ie *InvalidImportError
			require.ErrorAs(t, err, &ie)
			require.Equal(t, tc.field, ie.Field, "error: %v", err)
			require.NotContains(t, err.Error(), testCOSKey)
		})
	}
	require.Empty(t, f.requests(), "validation must fail before any API call")
}

// TestWindowsBYOLRefusedOnlyWhenEncrypted: BYOL with cloud-init is what IBM
// rules out for Windows, so only an encrypted (cloud-init) Windows import
// with BYOL is refused; a plain Windows BYOL import and an encrypted Windows
// import without BYOL pass the static checks.
func TestWindowsBYOLRefusedOnlyWhenEncrypted(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name            string
		encrypted, byol bool
		refused         bool
	}{
		{"encrypted with BYOL", true, true, true},
		{"encrypted without BYOL", true, false, false},
		{"plain with BYOL", false, true, false},
	} {
		req := goodImport()
		req.OSCode = "WIN_2022-STD_64"
		req.BYOL = tc.byol
		if !tc.encrypted {
			req.Encryption = nil
		}
		_, err := validateStatic(&req)
		var ie *InvalidImportError
		if tc.refused {
			require.ErrorAs(t, err, &ie, tc.name)
			require.Equal(t, "BYOL", ie.Field, tc.name)
			require.Contains(t, err.Error(), "cloud-init", tc.name)
		} else {
			require.NoError(t, err, tc.name)
		}
	}
}

func TestLocatorErrorIsWrapped(t *testing.T) {
	t.Parallel()
	f := newFakeSL(t)
	c := newTestClient(t, f)
	boom := errors.New("boom")
	req := goodImport()
	req.BucketLocation = ""
	req.BucketLocator = func(_ context.Context, region, bucket string) (string, error) {
		require.Equal(t, "us-south", region)
		require.Equal(t, "images", bucket)
		return "", boom
	}
	err := c.ValidateImport(context.Background(), req)
	require.ErrorIs(t, err, boom)
	require.Empty(t, f.requests())
}

func TestUnknownOSCodeRejectedAfterOneLookup(t *testing.T) {
	t.Parallel()
	f := newFakeSL(t)
	serveOSCodes(f)
	c := newTestClient(t, f)
	req := goodImport()
	req.OSCode = "WIN_3.11"
	req.AnyOSCode = true // past the documented list, to the API's
	for range 2 {
		err := c.ValidateImport(context.Background(), req)
		var ie *InvalidImportError
		require.ErrorAs(t, err, &ie)
		require.Equal(t, "OSCode", ie.Field)
	}
	require.Equal(t, 1, f.count("SoftLayer_Virtual_Guest_Block_Device_Template_Group::getVhdImportSoftwareDescriptions"),
		"the OS codes are cached per client")
	require.Zero(t, f.count("SoftLayer_Virtual_Guest_Block_Device_Template_Group::createFromIcos"))
}

func TestImportSendsTheConfiguration(t *testing.T) {
	t.Parallel()
	f := newFakeSL(t)
	serveOSCodes(f)
	f.on("SoftLayer_Virtual_Guest_Block_Device_Template_Group::createFromIcos", func(r fakeReq) (int, any) {
		return 200, map[string]any{"id": 4711, "globalIdentifier": "guid-4711", "name": "e2e-ubuntu",
			"status":      map[string]any{"keyName": "PENDING", "name": "Pending"},
			"transaction": map[string]any{"transactionStatus": map[string]any{"name": "IMAGE_IMPORT_QUEUED"}}}
	})
	c := newTestClient(t, f)

	cases := []struct {
		name            string
		edit            func(*ImportRequest)
		cloudInit, byol bool
		encrypted       bool
	}{
		{"encrypted ubuntu forces cloud-init", func(r *ImportRequest) {}, true, false, true},
		{"encrypted RHEL forces BYOL", func(r *ImportRequest) { r.OSCode = "REDHAT_9_64" }, true, true, true},
		{"plain image as asked", func(r *ImportRequest) { r.Encryption = nil; r.BYOL = true }, false, true, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			req := goodImport()
			tc.edit(&req)
			tmpl, err := c.Import(context.Background(), req)
			require.NoError(t, err)
			require.Equal(t, 4711, tmpl.ID)
			require.Equal(t, "guid-4711", tmpl.GlobalIdentifier)
			require.Equal(t, "IMAGE_IMPORT_QUEUED", tmpl.Transaction)
			require.False(t, tmpl.Active())

			reqs := f.requests()
			last := reqs[len(reqs)-1]
			require.Equal(t, "createFromIcos", last.Method)
			require.Equal(t, "POST", last.HTTPMethod)
			require.Len(t, last.Params, 1)
			var cfg map[string]any
			require.NoError(t, json.Unmarshal(last.Params[0], &cfg))
			require.Equal(t, req.URI, cfg["uri"])
			require.Equal(t, testCOSKey, cfg["ibmApiKey"])
			require.Equal(t, req.OSCode, cfg["operatingSystemReferenceCode"])
			require.Equal(t, "e2e-ubuntu", cfg["name"])
			require.Equal(t, tc.cloudInit, cfg["cloudInit"])
			require.Equal(t, tc.byol, cfg["byol"])
			if tc.encrypted {
				require.Equal(t, true, cfg["isEncrypted"])
				require.Equal(t, testCRN, cfg["crkCrn"])
				require.Equal(t, testWDEK, cfg["wrappedDek"])
			} else {
				require.NotContains(t, cfg, "isEncrypted")
				require.NotContains(t, cfg, "crkCrn")
			}
			// Credentials go in HTTP Basic auth.
			require.Equal(t, "SL123", last.User)
			require.Equal(t, testClassicKey, last.Pass)
		})
	}
	require.Equal(t, 1, f.count("SoftLayer_Virtual_Guest_Block_Device_Template_Group::getVhdImportSoftwareDescriptions"))
}

func TestAPIKeysNeverInErrors(t *testing.T) {
	t.Parallel()
	f := newFakeSL(t)
	serveOSCodes(f)
	// A server that echoes everything it was sent, credentials included.
	f.on("SoftLayer_Virtual_Guest_Block_Device_Template_Group::createFromIcos", func(r fakeReq) (int, any) {
		return 500, slError("SoftLayer_Exception_Public", "cannot import with "+r.Body+" as "+r.User+":"+r.Pass)
	})
	f.on("SoftLayer_Virtual_Guest_Block_Device_Template_Group::getObject", func(r fakeReq) (int, any) {
		return 200, "{not json " + r.Pass // a broken body that also echoes the key
	})
	c := newTestClient(t, f)

	_, err := c.Import(context.Background(), goodImport())
	require.Error(t, err)
	for _, k := range []string{testCOSKey, testClassicKey} {
		require.NotContains(t, err.Error(), k)
		if u := errors.Unwrap(err); u != nil {
			require.NotContains(t, u.Error(), k)
		}
	}
	require.Contains(t, err.Error(), secret.Redacted)
	var ae *APIError
	require.ErrorAs(t, err, &ae)
	require.Equal(t, 500, ae.StatusCode)
	require.Equal(t, "SoftLayer_Exception_Public", ae.Code)
	require.Contains(t, ae.Op, "createFromIcos")

	_, err = c.GetTemplate(context.Background(), 1)
	require.Error(t, err)
	require.NotContains(t, err.Error(), testClassicKey)
}

func TestNotFound(t *testing.T) {
	t.Parallel()
	f := newFakeSL(t)
	f.on("SoftLayer_Virtual_Guest_Block_Device_Template_Group::getObject", func(r fakeReq) (int, any) {
		return 404, slError("SoftLayer_Exception_ObjectNotFound", "Unable to find object with id of '9'.")
	})
	c := newTestClient(t, f)
	_, err := c.GetTemplate(context.Background(), 9)
	require.ErrorIs(t, err, ErrNotFound)
	require.Equal(t, 1, len(f.requests()), "a 404 is not retried")
}

// templateScript answers getObject with one state after another, then
// repeats the last.
func templateScript(f *fakeSL, states ...map[string]any) {
	i := 0
	f.on("SoftLayer_Virtual_Guest_Block_Device_Template_Group::getObject", func(r fakeReq) (int, any) {
		s := states[min(i, len(states)-1)]
		i++
		out := map[string]any{"id": r.ID, "globalIdentifier": "guid", "name": "img"}
		for k, v := range s {
			out[k] = v
		}
		return 200, out
	})
}

func status(key string, desc string) map[string]any {
	return map[string]any{"keyName": key, "name": strings.ToUpper(key[:1]) + strings.ToLower(key[1:]), "description": desc}
}

func tx(name string) map[string]any {
	return map[string]any{"transactionStatus": map[string]any{"name": name, "friendlyName": name + " (friendly)"}}
}

// child is a child group in dc, busy with a transaction or ready.
func child(dc string, transaction string) map[string]any {
	c := map[string]any{"id": 90, "parentId": 77, "datacenter": map[string]any{"name": dc}}
	if transaction != "" {
		c["transactionId"] = 1234
		c["transaction"] = tx(transaction)
	} else {
		c["blockDevices"] = []any{map[string]any{"id": 1}}
	}
	return c
}

func TestWaitTemplateActive(t *testing.T) {
	t.Parallel()
	f := newFakeSL(t)
	active := map[string]any{"name": "Active"}
	templateScript(f,
		map[string]any{"status": active, "children": []any{child("dal13", "IMAGE_IMPORT_QUEUED")}},
		map[string]any{"status": active, "children": []any{child("dal13", "IMAGE_IMPORT_QUEUED")}},
		map[string]any{"status": active, "children": []any{child("dal13", "IMAGE_IMPORT_COPY")}},
		map[string]any{"status": active, "children": []any{child("dal13", "")}},
	)
	c := newTestClient(t, f)
	var seen []string
	tmpl, err := c.WaitTemplate(context.Background(), 77, TemplateProgress(func(t Template) {
		seen = append(seen, t.StatusName+"/"+t.Transaction)
	}))
	require.NoError(t, err)
	require.True(t, tmpl.Active())
	require.Equal(t, 77, tmpl.ID)
	require.Equal(t, []string{"Active/IMAGE_IMPORT_QUEUED", "Active/IMAGE_IMPORT_QUEUED", "Active/IMAGE_IMPORT_COPY", "Active/"}, seen)
	for _, r := range f.requests() {
		require.Contains(t, r.Mask, "transaction[transactionStatus,transactionGroup]")
		require.Contains(t, r.Mask, "status")
	}
}

func TestWaitTemplateFailureReason(t *testing.T) {
	t.Parallel()
	f := newFakeSL(t)
	templateScript(f,
		map[string]any{"status": status("PENDING", ""), "transaction": tx("IMAGE_IMPORT_UNWRAP_KEY")},
		map[string]any{"status": status("ERROR", "KEY_UNWRAP_FAILED: the wrapped DEK does not belong to the root key")},
	)
	c := newTestClient(t, f)
	tmpl, err := c.WaitTemplate(context.Background(), 5)
	require.ErrorIs(t, err, ErrImportFailed)
	var fe *ImportFailedError
	require.ErrorAs(t, err, &fe)
	require.Equal(t, 5, fe.TemplateID)
	require.Equal(t, "ERROR", fe.Status)
	require.Equal(t, "KEY_UNWRAP_FAILED: the wrapped DEK does not belong to the root key", fe.Reason)
	require.Contains(t, err.Error(), "KEY_UNWRAP_FAILED")
	require.NotNil(t, tmpl)
	require.True(t, tmpl.Failed())
}

func TestWaitTemplateStopsWithContext(t *testing.T) {
	t.Parallel()
	f := newFakeSL(t)
	templateScript(f, map[string]any{"status": status("PENDING", ""), "transaction": tx("IMAGE_IMPORT_COPY")})
	c := newTestClient(t, f)
	// Long enough for the first poll to answer on a loaded machine (the
	// error must name its transaction), far shorter than the bound below.
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := c.WaitTemplate(ctx, 5, PollEvery(millis(5), millis(10)))
	require.ErrorIs(t, err, context.DeadlineExceeded)
	// Only a wait that ignored the context would come near this bound.
	require.Less(t, time.Since(start), 30*time.Second)
	require.Contains(t, err.Error(), "IMAGE_IMPORT_COPY", "the error tells where the wait stopped")
}

func TestWaitTemplatePollsThroughTransientErrors(t *testing.T) {
	t.Parallel()
	f := newFakeSL(t)
	n := 0
	f.on("SoftLayer_Virtual_Guest_Block_Device_Template_Group::getObject", func(r fakeReq) (int, any) {
		n++
		if n <= 3 {
			return 503, slError("SoftLayer_Exception_Public", "busy")
		}
		return 200, map[string]any{"id": r.ID, "status": status("ACTIVE", ""), "children": []any{child("dal13", "")}}
	})
	c := newTestClient(t, f, WithReadAttempts(1))
	tmpl, err := c.WaitTemplate(context.Background(), 3)
	require.NoError(t, err)
	require.True(t, tmpl.Active())
	require.Equal(t, 4, n)
}

func TestReadsRetryWritesDoNot(t *testing.T) {
	t.Parallel()
	f := newFakeSL(t)
	n := 0
	f.on("SoftLayer_Virtual_Guest_Block_Device_Template_Group::getObject", func(r fakeReq) (int, any) {
		n++
		if n < 3 {
			return 503, slError("SoftLayer_Exception_WebService_RateLimitExceeded", "slow down")
		}
		return 200, map[string]any{"id": r.ID, "status": status("ACTIVE", ""), "children": []any{child("dal13", "")}}
	})
	serveOSCodes(f)
	f.on("SoftLayer_Virtual_Guest_Block_Device_Template_Group::createFromIcos", func(fakeReq) (int, any) {
		return 504, slError("", "gateway timeout")
	})
	c := newTestClient(t, f)
	tmpl, err := c.GetTemplate(context.Background(), 1)
	require.NoError(t, err)
	require.True(t, tmpl.Active())
	require.Equal(t, 3, n)

	_, err = c.Import(context.Background(), goodImport())
	var ae *APIError
	require.ErrorAs(t, err, &ae)
	require.True(t, ae.Timeout())
	require.Equal(t, 1, f.count("SoftLayer_Virtual_Guest_Block_Device_Template_Group::createFromIcos"),
		"a create is never retried")
}

func TestFindTemplateByName(t *testing.T) {
	t.Parallel()
	f := newFakeSL(t)
	var answer []map[string]any
	f.on("SoftLayer_Account::getPrivateBlockDeviceTemplateGroups", func(r fakeReq) (int, any) {
		return 200, answer
	})
	c := newTestClient(t, f)
	ctx := context.Background()

	_, err := c.FindTemplateByName(ctx, "img")
	require.ErrorIs(t, err, ErrNotFound)

	answer = []map[string]any{{"id": 1, "name": "img", "status": status("ACTIVE", "")}}
	tmpl, err := c.FindTemplateByName(ctx, "img")
	require.NoError(t, err)
	require.Equal(t, 1, tmpl.ID)

	answer = append(answer, map[string]any{"id": 2, "name": "img"})
	_, err = c.FindTemplateByName(ctx, "img")
	require.ErrorIs(t, err, ErrAmbiguous)

	var flt map[string]map[string]map[string]any
	require.NoError(t, json.Unmarshal([]byte(f.requests()[0].Filter), &flt))
	require.Equal(t, "img", flt["privateBlockDeviceTemplateGroups"]["name"]["operation"])
}

func TestParseCOSURI(t *testing.T) {
	t.Parallel()
	u, err := ParseCOSURI("cos://eu-de/my.bucket-1/dir/sub/img.vhd-0.vhd")
	require.NoError(t, err)
	require.Equal(t, COSURI{Region: "eu-de", Bucket: "my.bucket-1", Object: "dir/sub/img.vhd-0.vhd"}, u)
	require.Equal(t, "cos://eu-de/my.bucket-1/dir/sub/img.vhd-0.vhd", u.String())
	for _, bad := range []string{"", "cos://", "cos://us-south", "cos://us-south/b", "cos:///b/o", "cos://US/b/o", "http://us-south/b/o", "cos://us-south/ab/o"} {
		_, err := ParseCOSURI(bad)
		require.Error(t, err, bad)
	}
}

// WithEndpoint("") keeps the default endpoint, so that a value read from an
// unset environment variable can be passed as it is.
func TestEmptyEndpointKeepsTheDefault(t *testing.T) {
	t.Parallel()
	c, err := New(IBMCloudAPIKey(secret.NewString("k")), WithEndpoint(""))
	require.NoError(t, err)
	require.Equal(t, DefaultEndpoint, c.Endpoint())
}
