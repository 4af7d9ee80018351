package classic

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/e2eimage/e2eimage/secret"
)

// The tests in this file replay fixture shapes (testdata/contract/README.md)
// through an httptest server: the waits' handling of transient and
// permanent SoftLayer errors, of a stuck transaction and of a vanished copy,
// and the strict decoding of POST answers.

// replaySteps is replay with explicit statuses.
func replaySteps(t *testing.T, steps ...replayStep) *replay {
	return &replay{steps: steps}
}

func step(t *testing.T, status int, fixture string) replayStep {
	return replayStep{status, contract(t, fixture)}
}

func TestContractTransient500MidWait(t *testing.T) {
	t.Parallel()
	f := newFakeSL(t)
	r := replaySteps(t,
		step(t, 200, "template_importing.json"),
		step(t, 500, "error_internal_error.json"),
		step(t, 200, "template_importing.json"),
		step(t, 200, "template_done.json"))
	r.serve(f)
	c := newTestClient(t, f)
	tmpl, err := c.WaitTemplate(context.Background(), 2200100)
	require.NoError(t, err, "one HTTP 500 Internal Error is passing: the wait goes on")
	require.True(t, tmpl.Active())
	require.Equal(t, 4, r.count())
}

func TestContractTransient500Bounded(t *testing.T) {
	t.Parallel()
	f := newFakeSL(t)
	r := replaySteps(t, step(t, 500, "error_internal_error.json"))
	r.serve(f)
	c := newTestClient(t, f, WithReadAttempts(2))
	_, err := c.WaitTemplate(context.Background(), 2200100)
	var ae *APIError
	require.ErrorAs(t, err, &ae)
	require.Equal(t, "Internal Error", ae.Message)
	// Each poll's read tries twice; maxPollFailures polls in a row.
	require.Equal(t, 2*maxPollFailures, r.count())
	require.Contains(t, err.Error(), "waiting for template 2200100")
}

func TestContractPermanent500NotRetried(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		status  int
		fixture string
	}{
		{500, "error_permission_denied.json"},
		{500, "error_invalid_parameter.json"},
		{404, "error_object_not_found.json"},
		{500, "error_object_not_found.json"},
	} {
		t.Run(tc.fixture, func(t *testing.T) {
			f := newFakeSL(t)
			r := replaySteps(t, step(t, tc.status, tc.fixture))
			r.serve(f)
			c := newTestClient(t, f)
			_, err := c.GetTemplate(context.Background(), 2200100)
			require.Error(t, err)
			require.Equal(t, 1, r.count(), "a permanent answer is not asked again")
			_, err = c.WaitTemplate(context.Background(), 2200100)
			require.Error(t, err)
			require.Equal(t, 2, r.count(), "nor polled through")
		})
	}
}

func TestClassifyFiveHundreds(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		status    int
		code, msg string
		want      bool
	}{
		{500, "SoftLayer_Exception_Public", "Internal Error", true},
		{500, "SoftLayer_Exception_Public", "The request timed out", true},
		{500, "SoftLayer_Exception_Public", "Please try again later.", true},
		{500, "", "Service temporarily unavailable", true},
		{500, "SoftLayer_Exception_ObjectNotFound", "Unable to find object with id of '1'.", false},
		{500, "SoftLayer_Exception_Public", "You do not have permission to view this image template.", false},
		{500, "SoftLayer_Exception_Permission_Denied", "Internal Error", false},
		{500, "SoftLayer_Exception_InvalidValue", "Invalid value provided for 'id'.", false},
		{500, "SoftLayer_Exception_Public", "Something else went wrong", false},
		{400, "SoftLayer_Exception_Public", "Internal Error", false},
		{503, "", "", true},
		{429, "", "", true},
		{500, "SoftLayer_Exception_WebService_RateLimitExceeded", "Rate limit", true},
	} {
		got := transient(&APIError{StatusCode: tc.status, Code: tc.code, Message: tc.msg})
		require.Equal(t, tc.want, got, "%d %s %q", tc.status, tc.code, tc.msg)
	}
}

func TestContractStuckFailingTransaction(t *testing.T) {
	t.Parallel()
	f := newFakeSL(t)
	r := replayOf(t, "template_importing.json", "template_import_failing.json")
	r.serve(f)
	clock := &steppingClock{now: time.Unix(1_700_000_000, 0), step: time.Minute}
	c := newTestClient(t, f, withClock(clock))
	// Without the bound the wait would last until the context's deadline.
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var fors []time.Duration
	tmpl, err := c.WaitTemplate(ctx, 2200100, NoProgressAfter(10*time.Minute), TemplateProgress(func(t Template) {
		fors = append(fors, t.Current.For)
	}))
	require.ErrorIs(t, err, ErrNoProgress)
	require.NoError(t, ctx.Err(), "ended by the bound, not by the context")
	var np *NoProgressError
	require.ErrorAs(t, err, &np)
	require.Equal(t, "IMAGE_IMPORT_FAILED", np.Transaction.Status)
	require.Equal(t, "Import failed: the image could not be decrypted", np.Transaction.Detail)
	require.Equal(t, "Image Import", np.Transaction.Group)
	require.Equal(t, 2200102, np.Transaction.CopyID)
	require.GreaterOrEqual(t, np.Transaction.For, 10*time.Minute)
	require.Contains(t, err.Error(), "Import failed: the image could not be decrypted")
	require.Contains(t, err.Error(), "IMAGE_IMPORT_FAILED")
	// One poll importing, then one per simulated minute of the failing
	// status: the first starts the bound, the eleventh passes it.
	require.Equal(t, 1+11, r.count())
	require.NotNil(t, tmpl)
	require.Equal(t, []time.Duration{0, 0, time.Minute, 2 * time.Minute}, fors[:4], "progress reports how long the status has been seen")
}

func TestContractDefaultNoProgressBound(t *testing.T) {
	t.Parallel()
	f := newFakeSL(t)
	r := replayOf(t, "template_import_failing.json")
	r.serve(f)
	clock := &steppingClock{now: time.Unix(1_700_000_000, 0), step: 10 * time.Minute}
	c := newTestClient(t, f, withClock(clock))
	_, err := c.WaitTemplate(context.Background(), 2200100)
	var np *NoProgressError
	require.ErrorAs(t, err, &np)
	require.Equal(t, DefaultNoProgressBound, np.Bound)
	require.Equal(t, 1+int(DefaultNoProgressBound/(10*time.Minute)), r.count())
}

func TestContractVanishedChild(t *testing.T) {
	t.Parallel()
	f := newFakeSL(t)
	// The child disappears while the parent stays Active without disks.
	r := replayOf(t, "template_importing.json", "template_importing.json", "template_no_copies.json")
	r.serve(f)
	c := newTestClient(t, f) // the default unknown-state bound is 15 minutes
	_, err := c.WaitTemplate(context.Background(), 2200100)
	require.ErrorIs(t, err, ErrImportFailed)
	var fe *ImportFailedError
	require.ErrorAs(t, err, &fe)
	require.Equal(t, "copy vanished", fe.Status)
	require.Contains(t, fe.Reason, "copy 2200102 in dal13")
	require.Contains(t, fe.Reason, "IMAGE_IMPORT")
	require.Equal(t, 2+2, r.count(), "ended by the second poll without the copy")
}

func TestContractCreateFromIcosErrorAt200(t *testing.T) {
	t.Parallel()
	f := newFakeSL(t)
	serveOSCodes(f)
	f.on("SoftLayer_Virtual_Guest_Block_Device_Template_Group::createFromIcos", func(fakeReq) (int, any) {
		return 200, contract(t, "response_createFromIcos_error.json")
	})
	c := newTestClient(t, f)
	_, err := c.Import(context.Background(), goodImport())
	var ae *APIError
	require.ErrorAs(t, err, &ae)
	require.Equal(t, 200, ae.StatusCode)
	require.Equal(t, "SoftLayer_Exception_Public", ae.Code)
	require.Equal(t, "The image could not be read from the given Cloud Object Storage URI.", ae.Message, "IBM's message is kept")
	require.Equal(t, 1, f.count("SoftLayer_Virtual_Guest_Block_Device_Template_Group::createFromIcos"), "sent once")
}

func TestContractPostAnswersStrict(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		answer string
		want   string
	}{
		{"no id", `{"name":"e2e-ubuntu"}`, `the answer has no "id"`},
		{"null id", `{"id":null}`, `the answer has no "id"`},
		{"id of the wrong type", `{"id":"2200100"}`, "decoding the answer"},
		{"not an object", `[1,2]`, "not a JSON object"},
		{"echoes the key", `{"error":"bad key ` + testCOSKey + `","code":"SoftLayer_Exception_Public"}`, "bad key " + secret.Redacted},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFakeSL(t)
			serveOSCodes(f)
			f.on("SoftLayer_Virtual_Guest_Block_Device_Template_Group::createFromIcos", func(fakeReq) (int, any) {
				return 200, tc.answer
			})
			c := newTestClient(t, f)
			_, err := c.Import(context.Background(), goodImport())
			var ae *APIError
			require.ErrorAs(t, err, &ae)
			require.Contains(t, err.Error(), tc.want)
			require.NotContains(t, err.Error(), testCOSKey)
		})
	}
}

func TestContractOrderAnswersStrict(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name           string
		verify, create string
		want           string
	}{
		{"verifyOrder answers an error at 200", `{"error":"Order is not valid","code":"SoftLayer_Exception_Order_InvalidLocation"}`, "", "Order is not valid"},
		{"verifyOrder without prices", `{"location":"1854895"}`, "", `no "prices"`},
		{"createObject without id", "", `{"hostname":"e2e-test"}`, `no "id"`},
		{"createObject answers an error at 200", "", `{"error":"Out of stock","code":"SoftLayer_Exception_Public"}`, "Out of stock"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFakeSL(t)
			replayOf(t, "template_done.json").serve(f)
			f.on("SoftLayer_Virtual_Guest::generateOrderTemplate", func(fakeReq) (int, any) {
				return 200, contract(t, "response_generateOrderTemplate.json")
			})
			verify := tc.verify
			if verify == "" {
				verify = contract(t, "response_generateOrderTemplate.json")
			}
			f.on("SoftLayer_Product_Order::verifyOrder", func(fakeReq) (int, any) { return 200, verify })
			f.on("SoftLayer_Virtual_Guest::createObject", func(fakeReq) (int, any) { return 200, tc.create })
			c := newTestClient(t, f)
			spec := goodSpec()
			spec.Template = TemplateRef{ID: 2200100}
			spec.Datacenter = ""
			_, err := c.CreateServer(context.Background(), spec)
			require.ErrorContains(t, err, tc.want)
			var ae *APIError
			require.True(t, errors.As(err, &ae))
			if tc.verify != "" {
				require.Zero(t, f.count("SoftLayer_Virtual_Guest::createObject"), "no order after a refused verification")
			}
		})
	}
}

// The poll interval grows while the transaction status does not change,
// although how long it has lasted does; and an error that ends the wait
// early names the transaction and how long it ran.
func TestContractWaitErrorNamesTheTransaction(t *testing.T) {
	t.Parallel()
	f := newFakeSL(t)
	r := replaySteps(t, step(t, 200, "template_importing.json"), step(t, 200, "template_importing.json"),
		step(t, 500, "error_internal_error.json"))
	r.serve(f)
	clock := &steppingClock{now: time.Unix(1_700_000_000, 0), step: time.Minute}
	c := newTestClient(t, f, withClock(clock), WithReadAttempts(1))
	_, err := c.WaitTemplate(context.Background(), 2200100)
	require.Error(t, err)
	require.Contains(t, err.Error(), `last transaction IMAGE_IMPORT "Importing the image" (group Image Import) on copy 2200102 for 1m0s`)
}

func TestContractCreateFromIcosListAnswer(t *testing.T) {
	t.Parallel()
	f := newFakeSL(t)
	serveOSCodes(f)
	f.on("SoftLayer_Virtual_Guest_Block_Device_Template_Group::createFromIcos", func(fakeReq) (int, any) {
		return 200, contract(t, "response_createFromIcos.json")
	})
	c := newTestClient(t, f)
	tmpl, err := c.Import(context.Background(), goodImport())
	require.NoError(t, err)
	require.Equal(t, 2200100, tmpl.ID)
	require.Equal(t, "5d1f0a3e-8c2b-4e7d-9a61-0f2b3c4d5e6f", tmpl.GlobalIdentifier)
}

func TestContractTemplateContent(t *testing.T) {
	t.Parallel()
	f := newFakeSL(t)
	replayOf(t, "template_content.json").serve(f)
	f.on("SoftLayer_Virtual_Guest_Block_Device_Template_Group::isEncrypted", func(fakeReq) (int, any) { return 200, "true" })
	c := newTestClient(t, f)
	tc, err := c.GetTemplateContent(context.Background(), 2200100)
	require.NoError(t, err)
	require.True(t, tc.Encrypted)
	require.Equal(t, []TemplateDisk{
		{Device: 0, Capacity: 25 << 30, Name: "e2e-ubuntu-0", OSCode: "UBUNTU_22_64"},
		{Device: 1, Capacity: 100 << 30, Name: "e2e-ubuntu-1"},
	}, tc.Disks, "the child's disks, in device order, GB counted in GiB")
	require.Equal(t, "UBUNTU_22_64", tc.OSCode)
	// The mask asks for what the disks need on the parent and each child.
	m := f.requests()[0].Mask
	for _, want := range []string{"children[", "blockDevices[id,device,diskSpace,units,diskImage[capacity,units,name,softwareReferences[softwareDescription[referenceCode]]]]"} {
		require.Contains(t, m, want)
	}

	// An isEncrypted answer that is not a boolean is an error, not false.
	f2 := newFakeSL(t)
	replayOf(t, "template_content.json").serve(f2)
	f2.on("SoftLayer_Virtual_Guest_Block_Device_Template_Group::isEncrypted", func(fakeReq) (int, any) {
		return 200, `{"error":"Internal Error","code":"SoftLayer_Exception_Public"}`
	})
	_, err = newTestClient(t, f2, WithReadAttempts(1)).GetTemplateContent(context.Background(), 2200100)
	require.Error(t, err)
}
