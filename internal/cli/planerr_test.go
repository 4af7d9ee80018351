package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"reflect"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/e2eimage/e2eimage/classic"
	"github.com/e2eimage/e2eimage/e2e"
	"github.com/e2eimage/e2eimage/e2e/ibmcloud"
	"github.com/e2eimage/e2eimage/iam"
	"github.com/e2eimage/e2eimage/secret"
)

func TestFlagErrorNamesFlagsNotFields(t *testing.T) {
	joined := errors.Join(
		fmt.Errorf("%w: ServiceID needs COSInstanceID, the COS instance its access policy names", e2e.ErrPlan),
		fmt.Errorf("%w: Name %q has surrounding white space", e2e.ErrPlan, " Bucket "),
		fmt.Errorf("%w: PartSize, Concurrency, ImageSize and AuditWait cannot be negative", e2e.ErrPlan),
		fmt.Errorf("%w: Config.APIKey is required", e2e.ErrPlan),
	)
	err := FlagError(joined, nil)
	require.ErrorIs(t, err, e2e.ErrPlan)
	require.Equal(t, `invalid flags: -service-id needs -cos-instance, the COS instance its access policy names; `+
		`-name " Bucket " has surrounding white space; `+
		`-part-size, -concurrency, -image-size and -audit-wait cannot be negative; `+
		`IBMCLOUD_API_KEY or -api-key-file is required`, err.Error())

	require.Equal(t, "invalid flags: -bucket is required",
		FlagError(fmt.Errorf("%w: Bucket is required", e2e.ErrPlan), map[string]string{"Bucket": "-bucket"}).Error())
	require.Same(t, io.EOF, FlagError(io.EOF, nil), "other errors are left alone")
	require.NoError(t, FlagError(nil, nil))
}

// The errors e2e.Run gives for a plan wrong in every way it checks name no
// field of e2e.Plan or ibmcloud.Config once told in flags.
func TestFlagErrorLeavesNoGoFieldInRunsErrors(t *testing.T) {
	crn := "crn:v1:bluemix:public:kms:us-south:a/0123456789abcdef0123456789abcdef:aaaaaaaa-2222-4333-8444-555555555555:key:bbbbbbbb-2222-4333-8444-555555555555"
	clients, err := ibmcloud.Connect(ibmcloud.Config{APIKey: secret.NewString("not-a-real-key"), RootKeyCRN: crn})
	require.NoError(t, err)
	defer clients.Close()
	// The clients the commands always make; everything else wrong.
	_, err = e2e.Run(context.Background(), e2e.Plan{
		Name: " web", Object: "web.raw", COS: clients.COS, Classic: clients.Classic, DEKSize: 3,
		ServiceID: iam.ServiceIDSpec{Name: "import"}, COSKeyAuthorization: true,
		Server: &classic.ServerSpec{}, PartSize: -1,
	})
	require.ErrorIs(t, err, e2e.ErrPlan)
	_, cerr := ibmcloud.Connect(ibmcloud.Config{})
	require.ErrorIs(t, cerr, e2e.ErrPlan)
	_, rerr := ibmcloud.Connect(ibmcloud.Config{APIKey: secret.NewString("k")})
	require.ErrorIs(t, rerr, e2e.ErrPlan)

	var fields []string
	for _, typ := range []reflect.Type{reflect.TypeFor[e2e.Plan](), reflect.TypeFor[ibmcloud.Config]()} {
		for i := range typ.NumField() {
			if f := typ.Field(i).Name; f != "COS" && f != "IAM" && f != "DEK" { // product names and terms too
				fields = append(fields, f)
			}
		}
	}
	field := regexp.MustCompile(`\b(` + strings.Join(fields, "|") + `)\b`)
	for _, e := range []error{err, cerr, rerr} {
		msg := FlagError(e, nil).Error()
		t.Log(msg)
		unquoted := regexp.MustCompile(`"[^"]*"`).ReplaceAllString(msg, `""`)
		require.Empty(t, field.FindAllString(unquoted, -1), msg)
		require.Contains(t, msg, "-")
	}
}

func TestConnectErrorExitCodes(t *testing.T) {
	code, err := ConnectError(fmt.Errorf("%w: Config.Region is required without a root key CRN", e2e.ErrPlan))
	require.Equal(t, ExitUsage, code)
	require.Equal(t, "invalid flags: -region is required without a root key CRN", err.Error())

	_, perr := ibmcloud.Connect(ibmcloud.Config{APIKey: secret.NewString("k"), RootKeyCRN: "crn:nope"})
	require.Error(t, perr)
	code, err = ConnectError(perr)
	require.Equal(t, ExitUsage, code)
	require.True(t, strings.HasPrefix(err.Error(), "-root-key-crn: "), err.Error())

	code, err = ConnectError(io.ErrUnexpectedEOF)
	require.Equal(t, 1, code)
	require.Same(t, io.ErrUnexpectedEOF, err)
}
