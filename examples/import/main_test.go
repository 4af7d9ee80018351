package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"path/filepath"
	"testing"
	"time"

	"github.com/e2eimage/e2eimage/vhdcrypt"

	"github.com/stretchr/testify/require"

	"github.com/e2eimage/e2eimage/e2e"
	"github.com/e2eimage/e2eimage/internal/cli/clitest"
	"github.com/e2eimage/e2eimage/internal/cloudsim"
	"github.com/e2eimage/e2eimage/internal/sampleimage"
)

type simEnv struct {
	sim       *cloudsim.Sim
	endpoints string
	vars      map[string]string
	dir       string
}

func startSim(t *testing.T, authorized bool) *simEnv {
	t.Helper()
	sim := clitest.StartSim(t, cloudsim.Options{Seed: 51, ClockSpeed: 2000, SeedAuthorizations: authorized})
	return &simEnv{sim: sim.Sim, endpoints: sim.Endpoints, dir: sim.Dir, vars: map[string]string{"IBMCLOUD_API_KEY": sim.Account.APIKey}}
}

func (s *simEnv) run(t *testing.T, stdin io.Reader, args ...string) (int, string, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var stdout, stderr bytes.Buffer
	code := run(ctx, args, stdin, &stdout, &stderr, clitest.Lookup(s.vars))
	return code, stdout.String(), stderr.String()
}

func (s *simEnv) templates() int {
	n := 0
	for _, ti := range s.sim.SoftLayer.Templates() {
		if ti.ParentID == 0 && ti.Name != cloudsim.SampleTemplate {
			n++
		}
	}
	return n
}

func TestImportAndResume(t *testing.T) {
	s := startSim(t, true)
	a := s.sim.Account
	image := filepath.Join(s.dir, "web-01.raw")
	require.NoError(t, sampleimage.WriteFile(image, sampleimage.Options{}))
	state := filepath.Join(s.dir, "web.state.json")
	args := []string{"-endpoints", s.endpoints, "-image", image, "-root-key-crn", a.RootKeyCRN, "-bucket", a.Bucket, "-state", state}

	code, stdout, stderr := s.run(t, nil, args...)
	require.Equal(t, 0, code, stderr)
	require.Regexp(t, `template \d+ [0-9a-f-]{36} "web-01" ACTIVE`, stdout)
	require.Contains(t, stdout, "object cos://us-south/"+a.Bucket+"/web-01.vhd-0.vhd")
	require.Contains(t, stderr, "upload        done")
	st, err := e2e.LoadState(state)
	require.NoError(t, err)
	require.True(t, st.TemplateActive)

	code, stdout, stderr = s.run(t, nil, append(args, "-json")...)
	require.Equal(t, 0, code, stderr)
	require.Contains(t, stderr, "upload        resumed")
	require.Contains(t, stderr, "import        resumed")
	var res e2e.Result
	require.NoError(t, json.Unmarshal([]byte(stdout), &res))
	require.Equal(t, st.TemplateID, res.Template.ID)
	require.Equal(t, 1, s.templates())
}

func TestImportRawStreamWithOwnKey(t *testing.T) {
	s := startSim(t, true)
	a := s.sim.Account
	img, err := sampleimage.Build(sampleimage.Options{Size: sampleimage.MinSize})
	require.NoError(t, err)
	dek, err := vhdcrypt.NewDEK(vhdcrypt.AES128XTS)
	require.NoError(t, err)
	keyFile := filepath.Join(s.dir, "dek.bin")
	require.NoError(t, vhdcrypt.WriteKeyFile(keyFile, dek))
	code, stdout, stderr := s.run(t, bytes.NewReader(img), "-endpoints", s.endpoints, "-image", "-", "-image-size", "8388608",
		"-name", "streamed", "-root-key-crn", a.RootKeyCRN, "-bucket", a.Bucket, "-key-file", keyFile,
		"-state", filepath.Join(s.dir, "s.json"), "-q")
	require.Equal(t, 0, code, stderr)
	require.Contains(t, stdout, `"streamed" ACTIVE`)
	require.NotContains(t, stderr, "upload: ", "-q hides the progress")
}

func TestImportPreflightFailure(t *testing.T) {
	s := startSim(t, false)
	a := s.sim.Account
	image := filepath.Join(s.dir, "disk.raw")
	require.NoError(t, sampleimage.WriteFile(image, sampleimage.Options{Size: sampleimage.MinSize}))
	code, _, stderr := s.run(t, nil, "-endpoints", s.endpoints, "-image", image, "-root-key-crn", a.RootKeyCRN,
		"-bucket", a.Bucket, "-state", filepath.Join(s.dir, "s.json"))
	require.Equal(t, 3, code, stderr)
	require.Contains(t, stderr, "authorization server-protect -> kms")
	require.Contains(t, stderr, "nothing was uploaded")
	require.Zero(t, s.templates())
}

func TestHelpAndUsage(t *testing.T) {
	s := &simEnv{vars: map[string]string{}}
	code, _, stderr := s.run(t, nil, "-help")
	require.Equal(t, 0, code)
	require.Contains(t, stderr, "Usage: import")
	code, _, _ = s.run(t, nil, "-image", "x")
	require.Equal(t, 2, code)
	code, _, stderr = s.run(t, nil, "-image", "x", "-root-key-crn", "c", "-bucket", "b")
	require.Equal(t, 2, code)
	require.Contains(t, stderr, "IBMCLOUD_API_KEY")
	code, _, _ = s.run(t, nil, "-image", "-", "-root-key-crn", "c", "-bucket", "b")
	require.Equal(t, 2, code, "a stream needs -name")
}
