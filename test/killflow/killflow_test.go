// Package killflow kills the whole End to End flow with SIGKILL at random
// points and checks that running it again always converges.
//
// The cloud must outlive the killed process, so it runs as a separate
// process: examples/cloudsim, whose first output line (the service URLs
// and the seeded account) is the endpoints file examples/e2e reads. The
// flow is examples/e2e itself, built from this module, killed after a
// random delay; then it is run again, and so on, and finally run to the
// end. Counting proxies (test/internal/lostproxy, losing nothing) sit in
// front of the classic API and the object store to count the imports and
// orders that reached the cloud.
//
// After the last run: exactly one image template with the run's name, and
// it is Active; exactly one server with the run's hostname, provisioned;
// createFromIcos and createObject each reached the cloud once; no
// multipart upload is pending; the object decrypts (with the DEK unwrapped
// from the state file's WDEK) to the image; and no output of any run and
// no state file holds the API key or the DEK.
package killflow

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/e2eimage/e2eimage/vhdcrypt"

	"github.com/e2eimage/e2eimage/classic"
	"github.com/e2eimage/e2eimage/e2e"
	"github.com/e2eimage/e2eimage/e2e/ibmcloud"
	"github.com/e2eimage/e2eimage/internal/sampleimage"
	"github.com/e2eimage/e2eimage/kms"
	"github.com/e2eimage/e2eimage/secret"
	"github.com/e2eimage/e2eimage/test/internal/leak"
	"github.com/e2eimage/e2eimage/test/internal/lostproxy"
	"github.com/e2eimage/e2eimage/test/internal/procs"
)

// kills is how many times the flow is killed: 3 by default (CI), 10 with
// HARDEN_LONG set to "1", or HARDEN_KILLS.
func kills() int {
	if v, err := strconv.Atoi(os.Getenv("HARDEN_KILLS")); err == nil && v > 0 {
		return v
	}
	if os.Getenv("HARDEN_LONG") == "1" {
		return 10
	}
	return 3
}

// defaultSeed places the kills when neither HARDEN_SEED nor a local run
// asks for other points: CI runs are repeatable.
const defaultSeed = 20261127

// killSeed is HARDEN_SEED if set; otherwise defaultSeed in CI (CI set) and
// the clock elsewhere, so that local runs try new kill points.
func killSeed(t *testing.T) int64 {
	if v := os.Getenv("HARDEN_SEED"); v != "" {
		seed, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			t.Fatalf("HARDEN_SEED=%q: %v", v, err)
		}
		return seed
	}
	if os.Getenv("CI") != "" {
		return defaultSeed
	}
	return time.Now().UnixNano()
}

type runOutput struct {
	killed   bool
	exitCode int
	took     time.Duration
	stdout   string
	stderr   string
}

func TestKillLoop(t *testing.T) {
	if testing.Short() {
		t.Skip("builds two commands and runs a simulated cloud")
	}
	seed := killSeed(t)
	t.Logf("random kill points from seed %d (set HARDEN_SEED to this value to repeat)", seed)
	rng := rand.New(rand.NewPCG(uint64(seed), 17))

	dir := t.TempDir()
	bins := t.TempDir()
	simBin := procs.Build(t, bins, "examples/cloudsim")
	e2eBin := procs.Build(t, bins, "examples/e2e")
	info := procs.StartSim(t, simBin, 7).Info

	// Counting proxies in front of the classic API and the object store.
	sl, err := lostproxy.Start(info.SoftLayer,
		lostproxy.Rule{Name: "createFromIcos", Method: "POST", PathContains: "createFromIcos"},
		lostproxy.Rule{Name: "createObject", Method: "POST", PathContains: "SoftLayer_Virtual_Guest.json"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sl.Close() })
	s3, err := lostproxy.Start(info.S3,
		lostproxy.Rule{Name: "create-multipart", Method: "POST", QueryContains: "uploads"},
		lostproxy.Rule{Name: "put", Method: "PUT"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s3.Close() })
	ep := info.Endpoints
	ep.SoftLayer, ep.S3 = sl.URL, s3.URL
	epJSON, _ := json.Marshal(ep)
	epFile := filepath.Join(dir, "endpoints.json")
	if err := os.WriteFile(epFile, epJSON, 0o600); err != nil {
		t.Fatal(err)
	}

	imgOpts := sampleimage.Options{Size: 48 << 20, Seed: 11}
	imgPath := filepath.Join(dir, "disk.raw")
	if err := sampleimage.WriteFile(imgPath, imgOpts); err != nil {
		t.Fatal(err)
	}
	stateDir := filepath.Join(dir, "state")
	if err := os.Mkdir(stateDir, 0o700); err != nil {
		t.Fatal(err)
	}
	env := []string{"IBMCLOUD_API_KEY=" + info.APIKey, "PATH=" + os.Getenv("PATH"), "HOME=" + dir, "TMPDIR=" + dir}
	flow := func(name string) []string {
		return []string{
			"-sim=false", "-endpoints", epFile, "-root-key-crn", info.RootKeyCRN, "-bucket", info.Bucket,
			"-image", imgPath, "-name", name, "-state", filepath.Join(stateDir, name+".json"), "-service-id", "",
			"-hostname", name, "-audit-wait", "0", "-part-size", fmt.Sprint(5 << 20), "-concurrency", "2", "-q",
		}
	}

	// Calibration: how long an uninterrupted flow takes, so that the kill
	// points spread over all of it.
	calib := runFlow(t, e2eBin, flow("killflow-calibration"), env, info.APIKey, 0)
	if calib.exitCode != 0 || calib.killed {
		t.Fatalf("the uninterrupted flow failed (exit %d); stderr:\n%s", calib.exitCode, calib.stderr)
	}
	span := calib.took + calib.took/10
	t.Logf("an uninterrupted flow takes %v", calib.took.Round(time.Millisecond))

	totalKills, finishedEarly, strayTemps, secrets := 0, 0, 0, 0
	flows, converged := 0, 0
	for cycle := range kills() {
		flows++
		name := fmt.Sprintf("killflow-%d", cycle)
		statePath := filepath.Join(stateDir, name+".json")
		before := counts{sl.Hits("createFromIcos"), sl.Hits("createObject"), s3.Hits("create-multipart")}
		outputs := []runOutput{}
		// One or two kills at random points of the flow, then a run to
		// the end.
		for range 1 + rng.IntN(2) {
			delay := time.Duration(rng.Int64N(int64(span))) + 5*time.Millisecond
			out := runFlow(t, e2eBin, flow(name), env, info.APIKey, delay)
			outputs = append(outputs, out)
			switch {
			case out.killed:
				totalKills++
				t.Logf("%s: killed after %v", name, delay.Round(time.Millisecond))
			case out.exitCode == 0:
				finishedEarly++
				t.Logf("%s: finished in %v, before its kill at %v", name, out.took.Round(time.Millisecond), delay.Round(time.Millisecond))
			default:
				t.Errorf("%s: exited %d without being killed; stderr:\n%s", name, out.exitCode, out.stderr)
			}
			// The state file is never corrupt: it loads, or there is
			// none yet; and it is private.
			if _, err := e2e.LoadState(statePath); err != nil && !errors.Is(err, os.ErrNotExist) {
				t.Fatalf("%s: after a kill the state file does not load: %v", name, err)
			}
			if fi, err := os.Stat(statePath); err == nil && fi.Mode().Perm()&0o077 != 0 {
				t.Errorf("%s: state file mode %v", name, fi.Mode().Perm())
			}
		}
		final := runFlow(t, e2eBin, flow(name), env, info.APIKey, 0)
		outputs = append(outputs, final)
		if final.exitCode != 0 || final.killed {
			t.Fatalf("%s: the run after the kills exited %d; stderr:\n%s", name, final.exitCode, final.stderr)
		}
		after := counts{sl.Hits("createFromIcos"), sl.Hits("createObject"), s3.Hits("create-multipart")}
		found, ok := verifyCloud(t, info, statePath, imgOpts, name, after.minus(before), outputs)
		secrets += found
		if ok {
			converged++
		}
	}
	if ents, err := os.ReadDir(stateDir); err == nil {
		for _, e := range ents {
			if fi, err := e.Info(); err == nil && fi.Mode().Perm()&0o077 != 0 {
				t.Errorf("%s in the state directory has mode %v", e.Name(), fi.Mode().Perm())
			}
			if !strings.HasSuffix(e.Name(), ".json") || strings.HasPrefix(e.Name(), ".") {
				strayTemps++
				t.Errorf("left in the state directory after the flows finished: %s", e.Name())
			}
		}
	} else {
		t.Errorf("reading the state directory: %v", err)
	}
	if totalKills == 0 {
		t.Errorf("no run was killed (%d finished before their kill): the kill points missed the flow", finishedEarly)
	}
	if converged != flows {
		t.Errorf("%d of %d flows converged after their kills", converged, flows)
	}
	t.Logf("HARDEN kills survived=%d finished_before_kill=%d flows=%d converged=%d stray_temp_files=%d secrets_found=%d",
		totalKills, finishedEarly, flows, converged, strayTemps, secrets)
}

// counts are requests that reached the cloud: imports, orders, multipart
// uploads started.
type counts struct{ imports, orders, creates int }

func (c counts) minus(d counts) counts {
	return counts{c.imports - d.imports, c.orders - d.orders, c.creates - d.creates}
}

// runFlow runs examples/e2e with args and env, and kills it with SIGKILL
// after killAfter (0: let it finish, within 5 minutes).
func runFlow(t *testing.T, bin string, args, env []string, apiKey string, killAfter time.Duration) runOutput {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Env = env
	var so, se bytes.Buffer
	cmd.Stdout, cmd.Stderr = &so, &se
	start := time.Now()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	if cl, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", cmd.Process.Pid)); err == nil && strings.Contains(string(cl), apiKey) {
		t.Errorf("the API key is in the process's argument list")
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	limit := killAfter
	if limit == 0 {
		limit = 5 * time.Minute
	}
	out := runOutput{}
	var werr error
	select {
	case werr = <-done:
	case <-time.After(limit):
		_ = cmd.Process.Signal(syscall.SIGKILL)
		werr = <-done
		if killAfter == 0 {
			t.Fatalf("the flow did not finish in 5 minutes; stderr:\n%s", se.String())
		}
	}
	out.took = time.Since(start)
	out.stdout, out.stderr = so.String(), se.String()
	var ee *exec.ExitError
	switch {
	case werr == nil:
	case errors.As(werr, &ee):
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			out.killed = true
		} else {
			out.exitCode = ee.ExitCode()
		}
	default:
		t.Fatalf("running the flow: %v", werr)
	}
	return out
}

// verifyCloud checks the simulated cloud after the final run and scans every
// output for secrets; it returns the number of secrets found and whether
// the cloud is what a converged flow leaves (every check held).
func verifyCloud(t *testing.T, info procs.SimInfo, statePath string, imgOpts sampleimage.Options, name string,
	reached counts, outputs []runOutput) (int, bool) {
	t.Helper()
	problems := 0
	fail := func(format string, args ...any) {
		t.Helper()
		problems++
		t.Errorf(format, args...)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	apiKey := secret.NewString(info.APIKey)
	clients, err := ibmcloud.Connect(ibmcloud.Config{APIKey: apiKey, RootKeyCRN: info.RootKeyCRN, Endpoints: info.Endpoints,
		PollMin: 10 * time.Millisecond, PollMax: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer clients.Close()

	tmpl, err := clients.Classic.FindTemplateByName(ctx, name)
	switch {
	case errors.Is(err, classic.ErrAmbiguous):
		fail("more than one template named %q: the image was imported twice", name)
	case err != nil:
		fail("finding the template: %v", err)
	case !tmpl.Active():
		fail("template %d is %s, not Active", tmpl.ID, tmpl.Status)
	}
	srv, err := clients.Classic.FindServer(ctx, name, "example.com")
	switch {
	case errors.Is(err, classic.ErrAmbiguous):
		fail("more than one server named %s: ordered twice", name)
	case err != nil:
		fail("finding the server: %v", err)
	case !srv.Provisioned():
		fail("server %d is not provisioned", srv.ID)
	}
	if reached.imports != 1 {
		fail("%s: createFromIcos reached the cloud %d times, want 1", name, reached.imports)
	}
	if reached.orders != 1 {
		fail("%s: createObject reached the cloud %d times, want 1", name, reached.orders)
	}
	pending, err := clients.COS.PendingUploads(ctx, info.Bucket, name)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range pending {
		fail("%s: multipart upload %s of %s left pending", name, p.UploadID, p.Key)
	}

	st, err := e2e.LoadState(statePath)
	if err != nil {
		t.Fatalf("final state: %v", err)
	}
	if st.Uploaded == nil {
		t.Fatalf("the final state records no upload")
	}
	dek, _, err := clients.Keys.Unwrap(ctx, kms.WrappedDEK{Ciphertext: st.WrappedDEK})
	if err != nil {
		t.Fatalf("unwrapping the state's WDEK: %v", err)
	}
	defer dek.Zero()
	var enc bytes.Buffer
	if _, err := clients.COS.DownloadStream(ctx, info.Bucket, st.Uploaded.Key, &enc); err != nil {
		t.Fatalf("downloading: %v", err)
	}
	var raw bytes.Buffer
	if err := vhdcrypt.DecryptImage(ctx, &raw, bytes.NewReader(enc.Bytes()), dek); err != nil {
		t.Fatalf("decrypting the object: %v", err)
	}
	img, err := sampleimage.Build(imgOpts)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(raw.Bytes(), img) {
		fail("the object does not decrypt to the image")
	}

	sc := leak.NewScanner()
	sc.AddKey("DEK", dek.Bytes())
	sc.AddString("API key", info.APIKey)
	var found []string
	for i, o := range outputs {
		found = append(found, sc.Scan(fmt.Sprintf("run %d stdout", i+1), o.stdout)...)
		found = append(found, sc.Scan(fmt.Sprintf("run %d stderr", i+1), o.stderr)...)
	}
	state, _ := os.ReadFile(statePath)
	found = append(found, sc.Scan("state file", string(state))...)
	for _, f := range found {
		t.Errorf("secret leaked: %s", f)
	}
	return len(found), problems == 0
}
