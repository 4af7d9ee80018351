package clitest

import (
	"bufio"
	"bytes"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// ProcessesWithArgs returns the running processes (zombies excluded) whose
// argument list holds args one after the other, other than this process.
func ProcessesWithArgs(t testing.TB, args ...string) []int {
	t.Helper()
	want := []byte(strings.Join(args, "\x00") + "\x00")
	ents, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatal(err)
	}
	var pids []int
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		cl, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		if err != nil || !bytes.Contains(cl, want) || !Alive(pid) {
			continue
		}
		pids = append(pids, pid)
	}
	return pids
}

// Alive reports whether process pid exists and is not a zombie.
func Alive(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	// pid (comm) state ...: comm may hold spaces and parentheses.
	i := bytes.LastIndexByte(b, ')')
	return i >= 0 && i+2 < len(b) && b[i+2] != 'Z' && b[i+2] != 'X'
}

// Children returns the running child processes of pid.
func Children(t testing.TB, pid int) []int {
	t.Helper()
	ents, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatal(err)
	}
	var out []int
	for _, e := range ents {
		c, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", c))
		if err != nil {
			continue
		}
		i := bytes.LastIndexByte(b, ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(string(b[i+1:])) // state ppid ...
		if len(f) > 1 && f[1] == strconv.Itoa(pid) && Alive(c) {
			out = append(out, c)
		}
	}
	return out
}

// ListeningPorts returns the TCP ports process pid listens on.
func ListeningPorts(t testing.TB, pid int) []int {
	t.Helper()
	inodes := map[string]bool{}
	fds, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, fd := range fds {
		l, err := os.Readlink(fmt.Sprintf("/proc/%d/fd/%s", pid, fd.Name()))
		if err == nil && strings.HasPrefix(l, "socket:[") {
			inodes[strings.TrimSuffix(strings.TrimPrefix(l, "socket:["), "]")] = true
		}
	}
	var ports []int
	for _, table := range []string{"tcp", "tcp6"} {
		f, err := os.Open(fmt.Sprintf("/proc/%d/net/%s", pid, table))
		if err != nil {
			continue
		}
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			// sl local_address rem_address st tx:rx tr:when retrnsmt uid timeout inode
			fl := strings.Fields(sc.Text())
			if len(fl) < 10 || fl[3] != "0A" || !inodes[fl[9]] {
				continue
			}
			if i := strings.LastIndexByte(fl[1], ':'); i >= 0 {
				if p, err := strconv.ParseUint(fl[1][i+1:], 16, 16); err == nil {
					ports = append(ports, int(p))
				}
			}
		}
		_ = f.Close()
	}
	return ports
}

// WaitGone waits up to limit for process pid to end, and reports whether
// it did.
func WaitGone(pid int, limit time.Duration) bool {
	for deadline := time.Now().Add(limit); Alive(pid); {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(20 * time.Millisecond)
	}
	return true
}

// RequireClosed fails the test when anything accepts connections on one of
// ports of 127.0.0.1.
func RequireClosed(t testing.TB, ports []int) {
	t.Helper()
	for _, p := range ports {
		c, err := net.DialTimeout("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(p)), time.Second)
		if err == nil {
			_ = c.Close()
			t.Errorf("port %d still accepts connections", p)
		}
	}
}

// KillOnCleanup kills the processes pids when the test ends, so that a
// failing test leaves none behind.
func KillOnCleanup(t testing.TB, pids ...int) {
	t.Cleanup(func() {
		for _, p := range pids {
			if Alive(p) {
				_ = syscall.Kill(p, syscall.SIGKILL)
			}
		}
	})
}
