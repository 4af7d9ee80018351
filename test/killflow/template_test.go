package killflow

// The flow from an existing image template (examples/e2e -from-template),
// killed at random points, and its disk writes measured.

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

	"golang.org/x/sys/unix"

	"github.com/e2eimage/e2eimage/classic"
	"github.com/e2eimage/e2eimage/e2e"
	"github.com/e2eimage/e2eimage/e2e/ibmcloud"
	"github.com/e2eimage/e2eimage/internal/cloudsim"
	"github.com/e2eimage/e2eimage/kms"
	"github.com/e2eimage/e2eimage/secret"
	"github.com/e2eimage/e2eimage/test/internal/lostproxy"
	"github.com/e2eimage/e2eimage/test/internal/procs"
	"github.com/e2eimage/e2eimage/vhdcrypt"
)

// templateWorld is a simulator process with counting proxies in front of
// the classic API and the object store, and the e2e command.
type templateWorld struct {
	dir, e2eBin, epFile string
	info                procs.SimInfo
	sl, s3              *lostproxy.Proxy
	env                 []string
	templateDisk        string // the raw disk the simulator's e2e-sample template exports
}

func newTemplateWorld(t *testing.T) *templateWorld {
	t.Helper()
	w := &templateWorld{dir: t.TempDir()}
	bins := t.TempDir()
	simBin := procs.Build(t, bins, "examples/cloudsim")
	w.e2eBin = procs.Build(t, bins, "examples/e2e")
	w.templateDisk = filepath.Join(w.dir, "template-disk.raw")
	w.info = procs.StartSim(t, simBin, 9, "-template-disk", w.templateDisk).Info
	var err error
	w.sl, err = lostproxy.Start(w.info.SoftLayer,
		lostproxy.Rule{Name: "copyToIcos", Method: "POST", PathContains: "copyToIcos"},
		lostproxy.Rule{Name: "createFromIcos", Method: "POST", PathContains: "createFromIcos"},
		lostproxy.Rule{Name: "createObject", Method: "POST", PathContains: "SoftLayer_Virtual_Guest.json"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = w.sl.Close() })
	w.s3, err = lostproxy.Start(w.info.S3,
		lostproxy.Rule{Name: "part", Method: "PUT", QueryContains: "partNumber="},
		lostproxy.Rule{Name: "get", Method: "GET"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = w.s3.Close() })
	ep := w.info.Endpoints
	ep.SoftLayer, ep.S3 = w.sl.URL, w.s3.URL
	epJSON, _ := json.Marshal(ep)
	w.epFile = filepath.Join(w.dir, "endpoints.json")
	if err := os.WriteFile(w.epFile, epJSON, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(w.dir, "state"), 0o700); err != nil {
		t.Fatal(err)
	}
	w.env = []string{"IBMCLOUD_API_KEY=" + w.info.APIKey, "PATH=" + os.Getenv("PATH"), "HOME=" + w.dir, "TMPDIR=" + w.dir}
	return w
}

func (w *templateWorld) statePath(name string) string {
	return filepath.Join(w.dir, "state", name+".json")
}

func (w *templateWorld) flow(name string) []string {
	return []string{
		"-sim=false", "-endpoints", w.epFile, "-root-key-crn", w.info.RootKeyCRN, "-bucket", w.info.Bucket,
		"-from-template", cloudsim.SampleTemplate, "-name", name, "-state", w.statePath(name), "-service-id", "",
		"-hostname", name, "-audit-wait", "0", "-part-size", fmt.Sprint(5 << 20), "-concurrency", "2", "-q",
	}
}

func TestKillLoopFromTemplate(t *testing.T) {
	if testing.Short() {
		t.Skip("builds two commands and runs a simulated cloud")
	}
	seed := time.Now().UnixNano()
	if v, err := strconv.ParseInt(os.Getenv("HARDEN_SEED"), 10, 64); err == nil {
		seed = v
	}
	t.Logf("random kill points from seed %d (HARDEN_SEED=%d to repeat)", seed, seed)
	rng := rand.New(rand.NewPCG(uint64(seed), 23))
	w := newTemplateWorld(t)

	calib := runFlow(t, w.e2eBin, w.flow("tplkill-calibration"), w.env, w.info.APIKey, 0)
	if calib.exitCode != 0 || calib.killed {
		t.Fatalf("the uninterrupted flow failed (exit %d); stderr:\n%s", calib.exitCode, calib.stderr)
	}
	span := calib.took + calib.took/10
	t.Logf("an uninterrupted flow from the template takes %v", calib.took.Round(time.Millisecond))

	totalKills := 0
	for cycle := range kills() {
		name := fmt.Sprintf("tplkill-%d", cycle)
		before := [4]int{w.sl.Hits("copyToIcos"), w.sl.Hits("createFromIcos"), w.sl.Hits("createObject"), 0}
		for range 1 + rng.IntN(2) {
			delay := time.Duration(rng.Int64N(int64(span))) + 5*time.Millisecond
			out := runFlow(t, w.e2eBin, w.flow(name), w.env, w.info.APIKey, delay)
			switch {
			case out.killed:
				totalKills++
				t.Logf("%s: killed after %v", name, delay.Round(time.Millisecond))
			case out.exitCode != 0:
				t.Errorf("%s: exited %d without being killed; stderr:\n%s", name, out.exitCode, out.stderr)
			}
			if _, err := e2e.LoadState(w.statePath(name)); err != nil && !errors.Is(err, os.ErrNotExist) {
				t.Fatalf("%s: after a kill the state file does not load: %v", name, err)
			}
		}
		final := runFlow(t, w.e2eBin, w.flow(name), w.env, w.info.APIKey, 0)
		if final.exitCode != 0 || final.killed {
			t.Fatalf("%s: the run after the kills exited %d; stderr:\n%s", name, final.exitCode, final.stderr)
		}
		reached := [3]int{w.sl.Hits("copyToIcos") - before[0], w.sl.Hits("createFromIcos") - before[1], w.sl.Hits("createObject") - before[2]}
		for i, what := range []string{"copyToIcos (the export)", "createFromIcos (the import)", "createObject (the order)"} {
			if reached[i] != 1 {
				t.Errorf("%s: %s reached the cloud %d times, want 1", name, what, reached[i])
			}
		}
		w.verify(t, name)
	}
	for uri, n := range w.s3.Succeeded("part") {
		if n > 1 {
			t.Errorf("part %s was stored %d times", uri, n)
		}
	}
	t.Logf("HARDEN template kills survived=%d flows=%d", totalKills, kills())
}

// verify checks the cloud after the last run of name: one encrypted
// template, Active; one server; one encrypted object and no plaintext
// export; no pending upload; the object decrypts to the exported disk.
func (w *templateWorld) verify(t *testing.T, name string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	clients, err := ibmcloud.Connect(ibmcloud.Config{APIKey: secret.NewString(w.info.APIKey), RootKeyCRN: w.info.RootKeyCRN,
		Endpoints: w.info.Endpoints, PollMin: 10 * time.Millisecond, PollMax: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer clients.Close()
	tmpl, err := clients.Classic.FindTemplateByName(ctx, name)
	switch {
	case errors.Is(err, classic.ErrAmbiguous):
		t.Errorf("more than one template named %q", name)
	case err != nil:
		t.Errorf("finding the template: %v", err)
	case !tmpl.Active():
		t.Errorf("template %d is not Active", tmpl.ID)
	}
	srv, err := clients.Classic.FindServer(ctx, name, "example.com")
	switch {
	case err != nil:
		t.Errorf("finding the one server: %v", err)
	case !srv.Provisioned():
		t.Errorf("server %d is not provisioned", srv.ID)
	}
	objs, err := clients.COS.List(ctx, w.info.Bucket, name)
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	for _, o := range objs {
		keys = append(keys, o.Key)
	}
	if len(keys) != 1 || keys[0] != name+e2e.ObjectSuffix {
		t.Errorf("%s: objects %v, want the encrypted object only (no plaintext export)", name, keys)
	}
	pending, err := clients.COS.PendingUploads(ctx, w.info.Bucket, name)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range pending {
		t.Errorf("%s: multipart upload %s of %s left pending", name, p.UploadID, p.Key)
	}
	st, err := e2e.LoadState(w.statePath(name))
	if err != nil {
		t.Fatal(err)
	}
	dek, _, err := clients.Keys.Unwrap(ctx, kms.WrappedDEK{Ciphertext: st.WrappedDEK})
	if err != nil {
		t.Fatal(err)
	}
	defer dek.Zero()
	var enc, raw bytes.Buffer
	if _, err := clients.COS.DownloadStream(ctx, w.info.Bucket, name+e2e.ObjectSuffix, &enc); err != nil {
		t.Fatal(err)
	}
	if err := vhdcrypt.DecryptImage(ctx, &raw, bytes.NewReader(enc.Bytes()), dek); err != nil {
		t.Fatalf("decrypting: %v", err)
	}
	want, err := os.ReadFile(w.templateDisk) // what the simulator process's e2e-sample exports
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(raw.Bytes(), want) {
		t.Errorf("%s: the encrypted object does not decrypt to the exported disk", name)
	}
}

// TestFromTemplateWritesNothingButState runs the whole flow from the
// sample template in a process of its own and reads that process's
// /proc/<pid>/io once it has exited (before it is reaped): what it wrote
// to storage must stay below 1 MiB, the state file's saves, while the
// image it encrypted is several MiB.
func TestFromTemplateWritesNothingButState(t *testing.T) {
	if testing.Short() {
		t.Skip("builds two commands and runs a simulated cloud")
	}
	w := newTemplateWorld(t)
	name := "tpl-io"
	cmd := exec.Command(w.e2eBin, w.flow(name)...)
	cmd.Env = w.env
	var so, se bytes.Buffer
	cmd.Stdout, cmd.Stderr = &so, &se
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pid := cmd.Process.Pid
	// Wait for the exit without reaping, so that /proc/<pid>/io still
	// holds the whole run's counters.
	var info unix.Siginfo
	if err := unix.Waitid(unix.P_PID, pid, &info, unix.WEXITED|unix.WNOWAIT, nil); err != nil {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		t.Fatalf("waiting for the flow: %v", err)
	}
	ioStats, ioErr := os.ReadFile(fmt.Sprintf("/proc/%d/io", pid))
	werr := cmd.Wait()
	if werr != nil {
		t.Fatalf("the flow failed: %v; stderr:\n%s", werr, se.String())
	}
	if ioErr != nil {
		t.Fatalf("reading the exited process's I/O counters: %v", ioErr)
	}
	writeBytes := int64(-1)
	for _, line := range strings.Split(string(ioStats), "\n") {
		if v, ok := strings.CutPrefix(line, "write_bytes: "); ok {
			writeBytes, _ = strconv.ParseInt(v, 10, 64)
		}
	}
	if writeBytes < 0 {
		t.Fatalf("no write_bytes in /proc/%d/io:\n%s", pid, ioStats)
	}
	st, err := e2e.LoadState(w.statePath(name))
	if err != nil {
		t.Fatal(err)
	}
	var exported int64
	for _, o := range st.Exported {
		exported += o.Size
	}
	t.Logf("the flow wrote %d bytes to storage; it encrypted an exported image of %d bytes into an object of %d bytes",
		writeBytes, exported, st.ImageSize)
	if exported < 4<<20 || st.Uploaded == nil {
		t.Fatalf("the run did not export and upload a real image (exported %d bytes)", exported)
	}
	if writeBytes >= 1<<20 {
		t.Errorf("the flow wrote %d bytes to storage, want < 1 MiB (the state file only)", writeBytes)
	}
	if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
		t.Logf("rusage: %d blocks written, max RSS %d KiB", ru.Oublock, ru.Maxrss)
	}
	w.verify(t, name)
}
