package hostile

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/e2eimage/e2eimage/internal/hostimg"
	"github.com/e2eimage/e2eimage/internal/testenv"
	"github.com/e2eimage/e2eimage/test/internal/procs"
)

// The budget every image reader keeps, whatever the bytes (issue 22):
// peak RSS and wall time of one process examining one image.
const (
	budgetRSSKiB  = 256 << 10 // 256 MiB
	budgetSeconds = 10
	// childAS caps the address space of each child, so that a reader that
	// would allocate gigabytes fails at once instead of taking the
	// machine's memory (the old readers took 5.9 GB on one of these).
	childAS = 2 << 30
)

// Exit codes of vhdcrypt inspect and of the preflight command.
const (
	exitNotImportable = 5
	exitNotInspected  = 6
	exitInterrupted   = 130
)

type child struct {
	code    int
	out     string
	rssKiB  int64
	elapsed time.Duration
}

// runChild runs bin with args in a process of its own, its address space
// capped at childAS, and returns its exit code, output and peak RSS. The
// peak RSS is what GNU time reads from wait4 for the program it starts:
// the rusage this test would get of its own child counts the test's own
// memory (Linux keeps a process's peak RSS across the exec that follows
// Go's vfork), but GNU time's child is forked from a small process.
func runChild(t *testing.T, bin string, args ...string) child {
	t.Helper()
	gnuTime := testenv.Tool(t, "/usr/bin/time", "apt-get install -y time")
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	rss := filepath.Join(t.TempDir(), "rss")
	sh := fmt.Sprintf(`ulimit -v %d && exec "$@"`, childAS>>10)
	argv := append([]string{"-c", sh, "sh", gnuTime, "-q", "-o", rss, "-f", "%M", bin}, args...)
	cmd := exec.CommandContext(ctx, "/bin/sh", argv...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	start := time.Now()
	err := cmd.Run()
	c := child{out: out.String(), elapsed: time.Since(start)}
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		c.code = ee.ExitCode()
	default:
		t.Fatalf("%s: %v", filepath.Base(bin), err)
	}
	b, err := os.ReadFile(rss)
	if err != nil {
		t.Fatal(err)
	}
	// GNU time writes "Command exited with non-zero status N" first when
	// the program fails; the figure is the last line.
	lines := strings.Fields(string(b))
	if len(lines) == 0 {
		t.Fatalf("GNU time wrote no figure: %q", b)
	}
	if c.rssKiB, err = strconv.ParseInt(lines[len(lines)-1], 10, 64); err != nil {
		t.Fatalf("GNU time wrote %q", b)
	}
	return c
}

// TestHostileImages runs the hostile image classes of issue 22 (a GPT
// whose backup header claims a huge entry array, in two forms; an ext4
// extent index loop, in two forms; an ext4 /etc with 20 and 48 extents of
// 128 MiB and a 1 TiB size) through vhdcrypt inspect, vhdcrypt encrypt and
// the doctor as e2e's preflight calls it (test/hostile/preflight), each in
// a process of its own, and checks each against the budget: a typed
// result (the documented exit code and the reason in the output), peak RSS
// <= 256 MiB, <= 10 s.
func TestHostileImages(t *testing.T) {
	bin := t.TempDir()
	vhdcrypt := procs.Build(t, bin, "examples/vhdcrypt")
	preflight := procs.Build(t, bin, "test/hostile/preflight")
	key := filepath.Join(bin, "dek")
	if c := runChild(t, vhdcrypt, "keygen", "-out", key); c.code != 0 {
		t.Fatalf("keygen: %d %s", c.code, c.out)
	}
	cases := []struct {
		name  string
		build func(testing.TB) string
		code  int    // inspect's and preflight's exit code
		why   string // in their output
	}{
		{"gpt-backup-4294967295-entries-of-128", func(tb testing.TB) string { return hostimg.GPTBackupBomb(tb, 4294967295, 128) },
			exitNotImportable, "backup GPT header claims 4294967295 entries of 128 bytes"},
		{"gpt-backup-0x7fffffff-entries-of-0xffffffff", func(tb testing.TB) string { return hostimg.GPTBackupBomb(tb, 0x7fffffff, 0xffffffff) },
			exitNotImportable, "backup GPT header claims 2147483647 entries of 4294967295 bytes"},
		{"ext4-extent-self-loop", func(tb testing.TB) string { return hostimg.Ext4ExtentLoop(tb, false) },
			exitNotInspected, "the extent tree of inode 2"},
		{"ext4-extent-loop-a-b-a", func(tb testing.TB) string { return hostimg.Ext4ExtentLoop(tb, true) },
			exitNotInspected, "the extent tree of inode 2"},
		{"ext4-etc-20-extents", func(tb testing.TB) string { return hostimg.Ext4HugeDir(tb, 20) },
			exitNotInspected, "exceeds 8 MiB"},
		{"ext4-etc-48-extents", func(tb testing.TB) string { return hostimg.Ext4HugeDir(tb, 48) },
			exitNotInspected, "exceeds 8 MiB"},
		{"cloud-cfg-250-KiB-of-keys", func(tb testing.TB) string { return hostimg.CloudCfgKeys(tb, 250<<10) },
			exitNotImportable, "[pass] ConfigDrive datasource: datasource_list is not set"},
	}
	var ran, runs, over, wrong int
	var maxRSS int64
	var maxTime time.Duration
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ran++
			img := tc.build(t)
			for _, v := range []struct {
				verb string
				bin  string
				args []string
				code int
				why  string
			}{
				{"inspect", vhdcrypt, []string{"inspect", "-in", img}, tc.code, tc.why},
				{"preflight", preflight, []string{img}, tc.code, tc.why},
				// encrypt reads no file system: it encrypts what it reads.
				{"encrypt", vhdcrypt, []string{"encrypt", "-q", "-in", img, "-out", filepath.Join(t.TempDir(), "out.vhd"), "-key-file", key}, 0, ""},
			} {
				c := runChild(t, v.bin, v.args...)
				runs++
				maxRSS, maxTime = max(maxRSS, c.rssKiB), max(maxTime, c.elapsed)
				t.Logf("%s: exit %d, peak RSS %d KiB, %v", v.verb, c.code, c.rssKiB, c.elapsed.Round(time.Millisecond))
				if c.rssKiB > budgetRSSKiB || c.elapsed > budgetSeconds*time.Second {
					over++
					t.Errorf("%s: peak RSS %d KiB, %v: over the budget of %d KiB and %d s", v.verb, c.rssKiB, c.elapsed, budgetRSSKiB, budgetSeconds)
				}
				if c.code != v.code || !strings.Contains(c.out, v.why) {
					wrong++
					t.Errorf("%s: exit %d, want %d with %q in the output:\n%s", v.verb, c.code, v.code, v.why, tail(c.out))
				}
			}
		})
	}
	t.Logf("HARDEN hostile-images cases=%d runs=%d over_budget=%d wrong_result=%d max_rss_kib=%d max_seconds=%.2f",
		ran, runs, over, wrong, maxRSS, maxTime.Seconds())
	if runs != 3*ran {
		t.Errorf("%d runs for %d cases, want %d", runs, ran, 3*ran)
	}
}

func tail(s string) string {
	if len(s) > 4000 {
		return "..." + s[len(s)-4000:]
	}
	return s
}

// TestInspectSignal sends SIGTERM (then SIGINT) to vhdcrypt inspect once it
// has its signal handler (it has opened the image; its standard output is
// a pipe the test keeps full, so that it cannot finish first) and checks
// that it exits 130 within 2 s. That the doctor stops within one read of a
// cancelled context is doctor's TestCancelDuringExamine.
func TestInspectSignal(t *testing.T) {
	bin := t.TempDir()
	vhdcrypt := procs.Build(t, bin, "examples/vhdcrypt")
	img := hostimg.Ext4Disk(t, hostimg.Tree(t), 16<<20, 20<<20, "dos")
	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGINT} {
		r, w, err := os.Pipe()
		if err != nil {
			t.Fatal(err)
		}
		// Fill the pipe: the child's first write blocks until we read.
		fill := make([]byte, 1<<20)
		fd := int(w.Fd()) // Fd puts the pipe in blocking mode: once only
		if err := syscall.SetNonblock(fd, true); err != nil {
			t.Fatal(err)
		}
		filled := 0
		for {
			n, err := syscall.Write(fd, fill)
			if n > 0 {
				filled += n
			}
			if err != nil {
				break
			}
		}
		if err := syscall.SetNonblock(fd, false); err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command(vhdcrypt, "inspect", "-in", img)
		cmd.Stdout = w
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		w.Close()
		// Wait until the process has its signal handler: it has read the
		// image's header by then (its open file shows in /proc).
		deadline := time.Now().Add(30 * time.Second)
		for !opened(cmd.Process.Pid, img) {
			if time.Now().After(deadline) {
				t.Fatal("inspect never opened the image")
			}
			time.Sleep(5 * time.Millisecond)
		}
		sent := time.Now()
		if err := cmd.Process.Signal(sig); err != nil {
			t.Fatal(err)
		}
		go func() { _, _ = drain(r) }()
		err = cmd.Wait()
		took := time.Since(sent)
		r.Close()
		code := cmd.ProcessState.ExitCode()
		t.Logf("%v: exit %d after %v (pipe held %d bytes)", sig, code, took.Round(time.Millisecond), filled)
		if code != exitInterrupted || took > 2*time.Second {
			t.Errorf("%v: exit %d (%v) after %v, want %d within 2 s; stderr:\n%s", sig, code, err, took, exitInterrupted, stderr.String())
		}
	}
}

// opened reports whether process pid has the file at p open.
func opened(pid int, p string) bool {
	ents, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		return false
	}
	for _, e := range ents {
		if l, err := os.Readlink(fmt.Sprintf("/proc/%d/fd/%s", pid, e.Name())); err == nil && l == p {
			return true
		}
	}
	return false
}

// drain reads r to its end.
func drain(r *os.File) (int64, error) {
	buf := make([]byte, 64<<10)
	var n int64
	for {
		k, err := r.Read(buf)
		n += int64(k)
		if err != nil {
			return n, err
		}
	}
}
