package main

import (
	"context"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/e2eimage/e2eimage/internal/sampleimage"
	"github.com/e2eimage/e2eimage/internal/testenv"
	"github.com/rogpeppe/go-internal/testscript"
)

func TestMain(m *testing.M) {
	testscript.Main(m, map[string]func(){
		"vhdcrypt": func() {
			os.Exit(run(context.Background(), os.Args[1:], &env{
				stdin: os.Stdin, stdout: os.Stdout, stderr: os.Stderr, lookup: os.LookupEnv,
			}))
		},
	})
}

// TestScripts runs testdata/script/*.txtar. Scripts see the reference
// vectors in $REF and the 64-byte reference key base64-encoded in $KEY64B64;
// sampleimage writes the sample disk (an Ubuntu-like ext4 disk that the
// image doctor passes) and qemu-img runs qemu-img.
func TestScripts(t *testing.T) {
	ref := testenv.RefDir(t)
	key64, err := os.ReadFile(filepath.Join(ref, "key64.bin"))
	if err != nil {
		t.Fatal(err)
	}
	testscript.Run(t, testscript.Params{
		Dir:                 "testdata/script",
		RequireExplicitExec: true,
		Setup: func(e *testscript.Env) error {
			e.Setenv("REF", ref)
			e.Setenv("KEY64B64", base64.StdEncoding.EncodeToString(key64))
			// Private copies of the keys: the reference files are world
			// readable, which vhdcrypt warns about.
			for _, k := range []string{"key32.bin", "key64.bin"} {
				b, err := os.ReadFile(filepath.Join(ref, k))
				if err != nil {
					return err
				}
				if err := os.WriteFile(filepath.Join(e.WorkDir, k), b, 0o600); err != nil {
					return err
				}
			}
			// The same key as base64 text in a file, and raw with a
			// newline after it: two ways to get a key file wrong.
			if err := os.WriteFile(filepath.Join(e.WorkDir, "key64.b64"), []byte(base64.StdEncoding.EncodeToString(key64)+"\n"), 0o600); err != nil {
				return err
			}
			if err := os.WriteFile(filepath.Join(e.WorkDir, "key64nl.bin"), append(append([]byte{}, key64...), '\n'), 0o600); err != nil {
				return err
			}
			return nil
		},
		// [qemu-img]: qemu-img is installed; under CI its absence is an
		// error rather than a skipped script.
		Condition: func(cond string) (bool, error) {
			if cond != "qemu-img" {
				return false, fmt.Errorf("unknown condition %q", cond)
			}
			if _, err := exec.LookPath("qemu-img"); err != nil {
				if testenv.InCI() {
					return false, errors.New("qemu-img is not installed (apt-get install qemu-utils)")
				}
				return false, nil
			}
			return true, nil
		},
		Cmds: map[string]func(ts *testscript.TestScript, neg bool, args []string){
			"exitcode":    cmdExitCode,
			"filemode":    cmdFileMode,
			"filesize":    cmdFileSize,
			"sampleimage": cmdSampleImage,
			"qemu-img":    cmdQemuImg,
		},
	})
}

// exitcode N vhdcrypt ARGS...: runs the command and requires exit status N.
func cmdExitCode(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) < 2 {
		ts.Fatalf("usage: exitcode N command [args...]")
	}
	want, err := strconv.Atoi(args[0])
	ts.Check(err)
	err = ts.Exec(args[1], args[2:]...)
	got := 0
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		got = ee.ExitCode()
	case err != nil:
		ts.Fatalf("running %s: %v", args[1], err)
	}
	if got != want {
		ts.Fatalf("exit code %d, want %d", got, want)
	}
}

// filemode FILE MODE: the file's permission bits, in octal.
func cmdFileMode(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) != 2 {
		ts.Fatalf("usage: filemode file mode")
	}
	fi, err := os.Stat(ts.MkAbs(args[0]))
	ts.Check(err)
	want, err := strconv.ParseUint(args[1], 8, 32)
	ts.Check(err)
	if (uint64(fi.Mode().Perm()) == want) == neg {
		ts.Fatalf("%s has mode %#o", args[0], fi.Mode().Perm())
	}
}

// filesize FILE N: the file's size in bytes.
func cmdFileSize(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) != 2 {
		ts.Fatalf("usage: filesize file bytes")
	}
	fi, err := os.Stat(ts.MkAbs(args[0]))
	ts.Check(err)
	want, err := strconv.ParseInt(args[1], 10, 64)
	ts.Check(err)
	if (fi.Size() == want) == neg {
		ts.Fatalf("%s is %d bytes", args[0], fi.Size())
	}
}

// sampleimage FILE: writes the sample disk (16 MiB, sparse) to FILE.
func cmdSampleImage(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 1 {
		ts.Fatalf("usage: sampleimage file")
	}
	ts.Check(sampleimage.WriteFile(ts.MkAbs(args[0]), sampleimage.Options{Seed: 1}))
}

// qemu-img ARGS...: runs qemu-img in the script's directory. A script
// that needs it starts the part that does with "[!qemu-img] skip".
func cmdQemuImg(ts *testscript.TestScript, neg bool, args []string) {
	if neg {
		ts.Fatalf("usage: qemu-img args...")
	}
	path, err := exec.LookPath("qemu-img")
	ts.Check(err)
	cmd := exec.Command(path, args...)
	cmd.Dir = ts.Getenv("WORK")
	if out, err := cmd.CombinedOutput(); err != nil {
		ts.Fatalf("qemu-img %v: %v\n%s", args, err, out)
	}
}

// TestInterrupted: a cancelled run (SIGINT in main) exits 130 and leaves no
// output file.
func TestInterrupted(t *testing.T) {
	ref := testenv.RefDir(t)
	dir := t.TempDir()
	out := filepath.Join(dir, "out.vhd")
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	var stderr strings.Builder
	code := run(ctx, []string{"encrypt", "-in", filepath.Join(ref, "plain.raw"), "-out", out, "-key-file", filepath.Join(ref, "key64.bin"), "-q", "-no-partition-table"},
		&env{stdin: os.Stdin, stdout: os.Stdout, stderr: &stderr, lookup: os.LookupEnv})
	if code != exitInterrupted {
		t.Fatalf("exit code %d, want %d; stderr: %s", code, exitInterrupted, stderr.String())
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 0 {
		t.Fatalf("left behind: %v", entries)
	}
}

// TestNoCloudSDK: the offline tool, and so vhdcrypt, disk and doctor, links
// no cloud SDK (go list -deps of this command).
func TestNoCloudSDK(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", ".").Output()
	if err != nil {
		t.Fatalf("go list -deps: %v", err)
	}
	deps := strings.Fields(string(out))
	for _, sdk := range []string{"github.com/IBM/keyprotect-go-client", "github.com/IBM/ibm-cos-sdk-go",
		"github.com/softlayer/softlayer-go", "github.com/IBM/platform-services-go-sdk", "github.com/IBM/go-sdk-core"} {
		for _, d := range deps {
			if d == sdk || strings.HasPrefix(d, sdk+"/") {
				t.Errorf("examples/vhdcrypt depends on %s (through %s)", sdk, d)
			}
		}
	}
	for _, want := range []string{"github.com/e2eimage/e2eimage/vhdcrypt", "github.com/e2eimage/e2eimage/disk", "github.com/e2eimage/e2eimage/doctor"} {
		if !slices.Contains(deps, want) {
			t.Errorf("go list -deps does not list %s: the check looks at the wrong thing", want)
		}
	}
	t.Logf("%d packages, none of a cloud SDK", len(deps))
}

// TestInspectNotInspected: an image whose only partition holds nothing the
// doctor reads fails no requirement but proves none either: inspect exits
// 6, not 0, so that "inspect || echo ..." does not take it for importable.
func TestInspectNotInspected(t *testing.T) {
	b := make([]byte, 4<<20)
	// An MBR with one Linux partition from LBA 2048 to the end, holding
	// bytes of no known file system.
	p := b[446:]
	p[4] = 0x83
	binary.LittleEndian.PutUint32(p[8:], 2048)
	binary.LittleEndian.PutUint32(p[12:], uint32(len(b)/512-2048))
	b[510], b[511] = 0x55, 0xAA
	for i := 2048 * 512; i < len(b); i++ {
		b[i] = byte(i*7 + 3)
	}
	img := filepath.Join(t.TempDir(), "unknown.raw")
	if err := os.WriteFile(img, b, 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := os.Create(filepath.Join(t.TempDir(), "stdout"))
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	var stderr strings.Builder
	code := run(context.Background(), []string{"inspect", "-in", img}, &env{stdin: os.Stdin, stdout: out, stderr: &stderr, lookup: os.LookupEnv})
	stdout, err := os.ReadFile(out.Name())
	if err != nil {
		t.Fatal(err)
	}
	if code != exitNotInspected {
		t.Fatalf("exit code %d, want %d\n%s%s", code, exitNotInspected, stdout, stderr.String())
	}
	if !strings.Contains(string(stdout), "[not inspected] file systems") || !strings.Contains(stderr.String(), "were not inspected") {
		t.Fatalf("the report does not say what was not inspected:\n%s%s", stdout, stderr.String())
	}
}
