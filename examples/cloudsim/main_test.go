package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"os"
	"strings"
	"testing"

	kp "github.com/IBM/keyprotect-go-client"
	"github.com/stretchr/testify/require"

	"github.com/e2eimage/e2eimage/disk"
	"github.com/e2eimage/e2eimage/doctor"
	"github.com/e2eimage/e2eimage/internal/cloudsim"
	"github.com/e2eimage/e2eimage/internal/testenv"
)

func TestMain(m *testing.M) { testenv.VerifyTestMain(m, testenv.NoStrayTemp(testenv.SimTempPattern)) }

func TestFirstLineAndKeyProtect(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	pr, pw := io.Pipe()
	var stderr bytes.Buffer
	done := make(chan int, 1)
	go func() {
		code := run(ctx, []string{"-addr", "127.0.0.1:0", "-seed", "42", "-seed-authorizations"}, pw, &stderr)
		_ = pw.Close()
		done <- code
	}()
	line, err := bufio.NewReader(pr).ReadString('\n')
	require.NoError(t, err, stderr.String())
	go func() { _, _ = io.Copy(io.Discard, pr) }()

	var m map[string]string
	require.NoError(t, json.Unmarshal([]byte(line), &m))
	for _, k := range []string{"iam", "iam_identity", "iam_policy", "kms", "hpcs", "s3", "softlayer", "activity_tracker",
		"account_id", "api_key", "kms_instance_id", "hpcs_instance_id", "root_key_crn", "hpcs_root_key_crn", "bucket",
		"region", "s3_access_key", "s3_secret_key", "cos_instance_id", "cos_instance_crn"} {
		require.NotEmpty(t, m[k], k)
	}
	require.Len(t, m, 20)
	require.True(t, strings.HasSuffix(m["softlayer"], "/rest/v3.1"))

	// Talk to Key Protect with the printed values only.
	c, err := kp.New(kp.ClientConfig{
		BaseURL: m["kms"], APIKey: m["api_key"], TokenURL: m["iam"] + "/identity/token", InstanceID: m["kms_instance_id"],
	}, kp.DefaultTransport())
	require.NoError(t, err)
	keyID := m["root_key_crn"][strings.LastIndexByte(m["root_key_crn"], ':')+1:]
	dek, wrapped, err := c.WrapCreateDEK(ctx, keyID, nil)
	require.NoError(t, err)
	raw, err := base64.StdEncoding.DecodeString(string(dek))
	require.NoError(t, err)
	require.Len(t, raw, 32)
	require.NotEmpty(t, wrapped)

	cancel()
	require.Equal(t, 0, <-done, stderr.String())
}

// serve runs the command with args until its first line, and returns the
// simulator it started and a function that stops it and returns the exit
// code and standard error.
func serve(t *testing.T, args ...string) (*cloudsim.Sim, func() (int, string)) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	simc := make(chan *cloudsim.Sim, 1)
	started = func(s *cloudsim.Sim) { simc <- s }
	t.Cleanup(func() { started = nil })
	pr, pw := io.Pipe()
	var stderr bytes.Buffer
	done := make(chan int, 1)
	go func() {
		code := run(ctx, args, pw, &stderr)
		_ = pw.Close()
		done <- code
	}()
	_, err := bufio.NewReader(pr).ReadString('\n')
	require.NoError(t, err, stderr.String())
	go func() { _, _ = io.Copy(io.Discard, pr) }()
	sim := <-simc
	return sim, func() (int, string) { cancel(); code := <-done; return code, stderr.String() }
}

// Imports and provisioning take minutes of simulated time: by default the
// simulator runs its clock 1000 times faster, so that examples/import
// against it finishes in seconds; -real-time is real time.
func TestFastClockByDefaultRealTimeOnRequest(t *testing.T) {
	for _, tc := range []struct {
		args  []string
		speed float64
		says  string
	}{
		{nil, DefaultClockSpeed, "1000 times faster"},
		{[]string{"-real-time"}, 1, "real time"},
		{[]string{"-clock-speed", "50"}, 50, "50 times faster"},
	} {
		sim, stop := serve(t, tc.args...)
		require.Equal(t, tc.speed, sim.Clock.Speed(), "%v", tc.args)
		code, stderr := stop()
		require.Equal(t, 0, code, stderr)
		require.Contains(t, stderr, tc.says)
	}
	require.EqualValues(t, 1000, DefaultClockSpeed)

	var out, errOut bytes.Buffer
	require.Equal(t, 2, run(context.Background(), []string{"-real-time", "-clock-speed", "10"}, &out, &errOut))
	require.Contains(t, errOut.String(), "not both")
}

func TestBadFlags(t *testing.T) {
	var out, errOut bytes.Buffer
	require.Equal(t, 2, run(context.Background(), []string{"-clock-speed", "0"}, &out, &errOut))
	require.Equal(t, 2, run(context.Background(), []string{"-nope"}, &out, &errOut))
	require.Equal(t, 2, run(context.Background(), []string{"extra"}, &out, &errOut))
	require.Equal(t, 1, run(context.Background(), []string{"-addr", "256.0.0.1:0"}, &out, &errOut))
	require.Empty(t, out.String())
}

// TestHelpNamesTheFirstLine: -help says that the first line of standard
// output is the JSON a program needs, and lists the flags.
func TestHelpNamesTheFirstLine(t *testing.T) {
	var out, errOut bytes.Buffer
	require.Equal(t, 0, run(context.Background(), []string{"-help"}, &out, &errOut))
	help := errOut.String()
	require.Contains(t, help, "The first line on standard output is one JSON object")
	require.Contains(t, help, "-endpoints sim.json")
	require.Contains(t, help, "cloudsimtest")
	require.Contains(t, help, "-sample-image")
	require.Empty(t, out.String(), "-help starts no simulator")
}

func ExampleInfo() {
	// The first line of `go run ./examples/cloudsim` decodes into Info.
	var info Info
	_ = json.Unmarshal([]byte(`{"kms":"http://127.0.0.1:1","api_key":"fake"}`), &info)
	os.Stdout.WriteString(info.KMS + " " + info.APIKey + "\n")
	// Output: http://127.0.0.1:1 fake
}

// TestSampleImage: -sample-image writes the sample disk, which the image
// doctor passes, and refuses to replace a file.
func TestSampleImage(t *testing.T) {
	path := t.TempDir() + "/disk.raw"
	var stderr bytes.Buffer
	require.Equal(t, 0, run(context.Background(), []string{"-sample-image", path, "-seed", "3"}, io.Discard, &stderr), stderr.String())
	f, err := os.Open(path)
	require.NoError(t, err)
	defer f.Close()
	fi, err := f.Stat()
	require.NoError(t, err)
	d, err := disk.Open(f, fi.Size())
	require.NoError(t, err)
	rep, err := doctor.Examine(context.Background(), d)
	require.NoError(t, err)
	require.True(t, rep.OK(), rep.String())
	require.Equal(t, "UBUNTU_22_64", rep.OSCode())
	stderr.Reset()
	require.Equal(t, 1, run(context.Background(), []string{"-sample-image", path}, io.Discard, &stderr))
	require.Contains(t, stderr.String(), "writing the sample disk")
}
