package secrets

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/e2eimage/e2eimage/e2e"
	"github.com/e2eimage/e2eimage/e2e/ibmcloud"
	"github.com/e2eimage/e2eimage/internal/sampleimage"
	"github.com/e2eimage/e2eimage/kms"
	"github.com/e2eimage/e2eimage/secret"
	"github.com/e2eimage/e2eimage/test/internal/hvhd"
	"github.com/e2eimage/e2eimage/test/internal/leak"
	"github.com/e2eimage/e2eimage/test/internal/procs"
)

var (
	binsOnce sync.Once
	binsDir  string
	binsErr  error
)

// examples builds the example commands once per test binary.
func examples(t *testing.T) map[string]string {
	t.Helper()
	if testing.Short() {
		t.Skip("builds the example commands")
	}
	binsOnce.Do(func() {
		binsDir, binsErr = os.MkdirTemp("", "e2eimage-secrets-bins")
	})
	if binsErr != nil {
		t.Fatal(binsErr)
	}
	out := map[string]string{}
	for _, pkg := range []string{"examples/e2e", "examples/vhdcrypt", "examples/cloudsim"} {
		p := filepath.Join(binsDir, filepath.Base(pkg))
		if _, err := os.Stat(p); err != nil {
			procs.Build(t, binsDir, pkg)
		}
		out[filepath.Base(pkg)] = p
	}
	return out
}

// secretName matches flag names that are about secrets.
var secretName = regexp.MustCompile(`(^|-)(key|secret|token|password|passwd|dek|credentials?|apikey)(-|$)`)

// flagLine is a flag in Go's usage output: "  -name placeholder".
var flagLine = regexp.MustCompile(`^  -([A-Za-z0-9-]+)(?:[ \t]+([^\t]+?))?(?:\t.*)?$`)

// TestExamplesTakeNoSecretFromArgs reads every example's flags from its
// -h output: a flag about a key, secret, token or password must name a
// file, an environment variable, a CRN, an id or a size, never take the
// secret itself (argv is readable by every user of the machine).
func TestExamplesTakeNoSecretFromArgs(t *testing.T) {
	bins := examples(t)
	runs := map[string][][]string{
		"e2e":      {{"-h"}},
		"cloudsim": {{"-h"}},
		"vhdcrypt": {{"encrypt", "-h"}, {"decrypt", "-h"}, {"verify", "-h"}, {"inspect", "-h"}, {"keygen", "-h"}},
	}
	okPlaceholder := map[string]bool{"file": true, "path": true, "variable": true, "CRN": true, "id": true, "int": true, "bytes": true, "CRN or GUID": true}
	okSuffix := []string{"-file", "-env", "-crn", "-id", "-bits", "-authorization"}
	flags, suspicious := 0, 0
	for name, argsList := range runs {
		for _, args := range argsList {
			out, _ := exec.Command(bins[name], args...).CombinedOutput()
			sc := bufio.NewScanner(bytes.NewReader(out))
			for sc.Scan() {
				m := flagLine.FindStringSubmatch(sc.Text())
				if m == nil {
					continue
				}
				flags++
				flag, placeholder := m[1], strings.TrimSpace(m[2])
				if !secretName.MatchString(flag) || placeholder == "" || okPlaceholder[placeholder] {
					continue
				}
				ok := false
				for _, s := range okSuffix {
					ok = ok || strings.HasSuffix(flag, s)
				}
				if !ok {
					suspicious++
					t.Errorf("%s %s: flag -%s %s looks like it takes a secret on the command line", name, strings.Join(args[:len(args)-1], " "), flag, placeholder)
				}
			}
		}
	}
	if flags < 20 {
		t.Fatalf("only %d flags found in the usage output; the parser is broken", flags)
	}
	t.Logf("HARDEN secrets scope=argv flags=%d secret_flags=%d", flags, suspicious)
}

// coreLimit reads the soft "Max core file size" of a process.
func coreLimit(pid int) (string, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/limits", pid))
	if err != nil {
		return "", err
	}
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, "Max core file size") {
			f := strings.Fields(strings.TrimPrefix(l, "Max core file size"))
			if len(f) > 0 {
				return f[0], nil
			}
		}
	}
	return "", fmt.Errorf("no core limit in /proc/%d/limits", pid)
}

// TestExamplesCoreDumps starts each example with core dumps allowed and
// reads its own limit while it runs: a program that holds DEKs and API
// keys must set RLIMIT_CORE to 0 at start-up, so that a crash cannot write
// them to disk. It reads the limit once the program has shown that its
// main function runs: the simulator has printed its first line, and the
// two others have consumed input from their standard input.
func TestExamplesCoreDumps(t *testing.T) {
	bins := examples(t)
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_CORE, &lim); err != nil {
		t.Skipf("no RLIMIT_CORE: %v", err)
	}
	if lim.Max == 0 {
		t.Skip("core dumps are disabled for this whole environment (hard limit 0): nothing to observe")
	}
	saved := lim
	lim.Cur = min(lim.Max, 1<<30)
	if err := syscall.Setrlimit(syscall.RLIMIT_CORE, &lim); err != nil {
		t.Skipf("cannot allow core dumps for the children: %v", err)
	}
	defer func() { _ = syscall.Setrlimit(syscall.RLIMIT_CORE, &saved) }()

	dir := t.TempDir()
	key := base64.StdEncoding.EncodeToString(hvhd.DEKBytes())
	const size = 8 << 20
	cmds := map[string]*exec.Cmd{
		"cloudsim": exec.Command(bins["cloudsim"]),
		"vhdcrypt": exec.Command(bins["vhdcrypt"], "encrypt", "-in", "-", "-out", filepath.Join(dir, "out.vhd"), "-key-env", "HARDEN_KEY", "-size", fmt.Sprint(size), "-q"),
		"e2e":      exec.Command(bins["e2e"], "-sim", "-image", "-", "-image-size", fmt.Sprint(size), "-os-code", "UBUNTU_22_64", "-q", "-state", filepath.Join(dir, "st.json")),
	}
	checked, enabled := 0, 0
	for name, cmd := range cmds {
		got, err := coreLimitOnceRunning(t, name, cmd, key)
		switch {
		case err != nil:
			t.Errorf("%s: %v", name, err)
		case got != "0":
			checked++
			enabled++
			t.Errorf("examples/%s keeps core dumps enabled (RLIMIT_CORE %s): it must set the limit to 0 at start-up", name, got)
		default:
			checked++
		}
	}
	if checked != len(cmds) {
		t.Errorf("the core limit of %d of %d programs was read", checked, len(cmds))
	}
	t.Logf("HARDEN secrets scope=coredumps programs=%d core_dumps_enabled=%d", checked, enabled)
}

// coreLimitOnceRunning starts cmd, waits until its main function has run
// (the simulator's first output line; for the other examples, 1 MiB of
// standard input consumed, which is more than a pipe holds), reads its soft
// core limit, then kills it.
func coreLimitOnceRunning(t *testing.T, name string, cmd *exec.Cmd, key string) (string, error) {
	// Killed below: their temporary files (the simulator's data directory)
	// go to this test's directory, which is removed.
	cmd.Env = append(os.Environ(), "HARDEN_KEY="+key, "TMPDIR="+t.TempDir())
	stdin, err := cmd.StdinPipe() // held open: the program waits for more input
	if err != nil {
		return "", err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return "", err
	}
	var stderr lockedBuffer // written by exec's copier while the test reads it
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		return "", err
	}
	defer func() {
		_ = stdin.Close()
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	}()
	ready := make(chan error, 1)
	go func() {
		if name == "cloudsim" {
			_, err := bufio.NewReader(stdout).ReadBytes('\n')
			ready <- err
			_, _ = io.Copy(io.Discard, stdout)
			return
		}
		go func() { _, _ = io.Copy(io.Discard, stdout) }()
		_, err := stdin.Write(diskStart(1 << 20))
		ready <- err
	}()
	select {
	case err := <-ready:
		if err != nil {
			return "", fmt.Errorf("the program did not start its work: %v; stderr:\n%s", err, stderr.String())
		}
	case <-time.After(2 * time.Minute):
		return "", fmt.Errorf("the program showed no sign of running in 2 minutes")
	}
	if cl, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", cmd.Process.Pid)); err == nil && strings.Contains(string(cl), key[:16]) {
		t.Errorf("%s: the key is in the argument list", name)
	}
	return coreLimit(cmd.Process.Pid)
}

// TestExampleE2EVerboseLeaksNothing runs examples/e2e against a separate
// simulator with debug logs (-v) and the JSON result (-json), preparing a
// service ID whose new API key it saves to a file, and looks for the API
// key, the import API key and the DEK in everything it printed and in the
// state file; the saved key file and the state file must be private.
func TestExampleE2EVerboseLeaksNothing(t *testing.T) {
	bins := examples(t)
	sim := procs.StartSim(t, bins["cloudsim"], 31)
	dir := t.TempDir()
	ep := filepath.Join(dir, "endpoints.json")
	if err := os.WriteFile(ep, sim.Line, 0o600); err != nil {
		t.Fatal(err)
	}
	img := filepath.Join(dir, "disk.raw")
	if err := sampleimage.WriteFile(img, sampleimage.Options{Size: 16 << 20, Seed: 8}); err != nil {
		t.Fatal(err)
	}
	saved := filepath.Join(dir, "import-key")
	state := filepath.Join(dir, "state.json")
	cmd := exec.Command(bins["e2e"], "-sim=false", "-v", "-json", "-endpoints", ep, "-root-key-crn", sim.Info.RootKeyCRN,
		"-bucket", sim.Info.Bucket, "-cos-instance", sim.Info.COSInstanceID, "-image", img, "-name", "secrets", "-state", state,
		"-prepare", "-service-id", "secrets-import", "-save-api-key", saved, "-hostname", "secrets", "-audit-wait", "0", "-part-size", fmt.Sprint(5<<20))
	cmd.Env = []string{"IBMCLOUD_API_KEY=" + sim.Info.APIKey, "PATH=" + os.Getenv("PATH"), "HOME=" + dir, "TMPDIR=" + dir}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("examples/e2e: %v\n%s", err, stderr.String())
	}
	var res e2e.Result
	if err := json.Unmarshal(stdout.Bytes(), &res); err != nil {
		t.Fatalf("the -json output: %v\n%s", err, stdout.String())
	}
	importKey, err := os.ReadFile(saved)
	if err != nil {
		t.Fatalf("the saved import API key: %v", err)
	}
	for _, p := range []string{saved, state} {
		if fi, err := os.Stat(p); err != nil || fi.Mode().Perm()&0o077 != 0 {
			t.Errorf("%s: mode %v, %v", filepath.Base(p), fi.Mode().Perm(), err)
		}
	}
	clients, err := ibmcloud.Connect(ibmcloud.Config{APIKey: secret.NewString(sim.Info.APIKey), RootKeyCRN: sim.Info.RootKeyCRN, Endpoints: sim.Info.Endpoints})
	if err != nil {
		t.Fatal(err)
	}
	defer clients.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	dek, _, err := clients.Keys.Unwrap(ctx, kms.WrappedDEK{Ciphertext: res.Key.WrappedDEK})
	if err != nil {
		t.Fatalf("unwrapping the result's WDEK: %v", err)
	}
	defer dek.Zero()

	sc := leak.NewScanner()
	sc.AddKey("DEK", dek.Bytes())
	sc.AddString("API key", sim.Info.APIKey)
	sc.AddString("import API key", strings.TrimSpace(string(importKey)))
	if len(strings.TrimSpace(string(importKey))) < 16 {
		t.Fatalf("the saved import key is %d bytes", len(importKey))
	}
	st, _ := os.ReadFile(state)
	var found []string
	found = append(found, sc.Scan("stdout", stdout.String())...)
	found = append(found, sc.Scan("stderr (-v)", stderr.String())...)
	found = append(found, sc.Scan("state file", string(st))...)
	for _, f := range found {
		t.Errorf("secret leaked: %s", f)
	}
	if !strings.Contains(stderr.String(), "level=DEBUG") && !strings.Contains(stderr.String(), `"level":"DEBUG"`) {
		t.Logf("note: no debug record recognised in -v output (%d bytes)", stderr.Len())
	}
	t.Logf("HARDEN secrets scope=examples/e2e output_bytes=%d found=%d", stdout.Len()+stderr.Len()+len(st), len(found))
}

// TestExampleVhdcryptFilesArePrivate runs vhdcrypt keygen and encrypt with a
// umask of 0: the key file and the image must still be private.
func TestExampleVhdcryptFilesArePrivate(t *testing.T) {
	bins := examples(t)
	old := syscall.Umask(0)
	defer syscall.Umask(old)
	dir := t.TempDir()
	key := filepath.Join(dir, "dek")
	if out, err := exec.Command(bins["vhdcrypt"], "keygen", "-out", key).CombinedOutput(); err != nil {
		t.Fatalf("vhdcrypt keygen: %v\n%s", err, out)
	}
	img := filepath.Join(dir, "disk.raw")
	if err := sampleimage.WriteFile(img, sampleimage.Options{Size: sampleimage.MinSize, Seed: 9}); err != nil {
		t.Fatal(err)
	}
	enc := filepath.Join(dir, "disk.vhd")
	out, err := exec.Command(bins["vhdcrypt"], "encrypt", "-in", img, "-out", enc, "-key-file", key, "-q").CombinedOutput()
	if err != nil {
		t.Fatalf("vhdcrypt encrypt: %v\n%s", err, out)
	}
	raw, err := os.ReadFile(key)
	if err != nil {
		t.Fatal(err)
	}
	found, checked := 0, 0
	if f := leak.Find(string(out), raw); f != "" {
		found++
		t.Errorf("vhdcrypt printed the key (%s)", f)
	}
	for _, p := range []string{key, enc} {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		checked++
		if fi.Mode().Perm()&0o077 != 0 {
			t.Errorf("%s: mode %v under umask 0", filepath.Base(p), fi.Mode().Perm())
		}
	}
	if found != 0 || checked != 2 {
		t.Errorf("%d files checked, %d printed keys", checked, found)
	}
	t.Logf("HARDEN secrets scope=vhdcrypt-files files=%d found=%d", checked, found)
}

// diskStart is n bytes that begin like a whole disk (an MBR with one Linux
// partition), as the programs' input checks require, then zeros.
func diskStart(n int) []byte {
	b := make([]byte, n)
	e := b[446:462]
	e[4] = 0x83                                  // Linux
	binary.LittleEndian.PutUint32(e[8:], 2048)   // first sector
	binary.LittleEndian.PutUint32(e[12:], 14336) // sectors (8 MiB disk)
	b[510], b[511] = 0x55, 0xAA
	return b
}
