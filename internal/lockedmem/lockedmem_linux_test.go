package lockedmem

import (
	"bufio"
	"fmt"
	"os"
	"runtime"
	"strings"
	"testing"
	"unsafe"
)

// vmFlags returns the VmFlags of the mapping of /proc/self/smaps that
// holds addr (see proc(5): "lo" locked, "dd" not in core dumps).
func vmFlags(t *testing.T, addr uintptr) []string {
	t.Helper()
	f, err := os.Open("/proc/self/smaps")
	if err != nil {
		t.Skipf("no /proc/self/smaps: %v", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	in := false
	for sc.Scan() {
		line := sc.Text()
		var lo, hi uintptr
		if n, _ := fmt.Sscanf(line, "%x-%x ", &lo, &hi); n == 2 && strings.Contains(line, " ") && !strings.HasSuffix(strings.Fields(line)[0], ":") {
			in = lo <= addr && addr < hi
			continue
		}
		if in && strings.HasPrefix(line, "VmFlags:") {
			return strings.Fields(strings.TrimPrefix(line, "VmFlags:"))
		}
	}
	t.Fatalf("no mapping holds %#x", addr)
	return nil
}

func has(flags []string, f string) bool {
	for _, x := range flags {
		if x == f {
			return true
		}
	}
	return false
}

func TestProtectedPage(t *testing.T) {
	b := Alloc(64)
	got := b.Bytes()
	if len(got) != 64 || cap(got) != 64 {
		t.Fatalf("len %d cap %d", len(got), cap(got))
	}
	for _, c := range got {
		if c != 0 {
			t.Fatal("not zeroed")
		}
	}
	for i := range got {
		got[i] = 0xA5
	}
	addr := uintptr(unsafe.Pointer(&got[0]))
	if addr%uintptr(pageSize) != 0 {
		t.Errorf("buffer at %#x does not start a page", addr)
	}
	p := b.Protection()
	if !p.NotInCoreDump {
		t.Error("MADV_DONTDUMP refused")
	}
	flags := vmFlags(t, addr)
	if p.NotInCoreDump && !has(flags, "dd") {
		t.Errorf("page not marked dd (flags %v)", flags)
	}
	if p.Locked && !has(flags, "lo") {
		t.Errorf("page not marked lo (flags %v)", flags)
	}
	t.Logf("protection %+v, VmFlags %v", p, flags)

	select {
	case <-b.Released():
		t.Fatal("Released is closed before Release")
	default:
	}
	b.Release()
	select {
	case <-b.Released():
	default:
		t.Error("Released is still open after Release")
	}
	for _, c := range got {
		if c != 0 {
			t.Fatal("Release left bytes in the page")
		}
	}
	if b.Bytes() != nil || b.Protection() != (Protection{}) {
		t.Error("released buffer still reports memory")
	}
	b.Release()
	if p.Locked && has(vmFlags(t, addr), "lo") {
		t.Error("page still locked after Release")
	}
}

// mappings counts the process's memory mappings.
func mappings(t *testing.T) int {
	t.Helper()
	b, err := os.ReadFile("/proc/self/maps")
	if err != nil {
		t.Skipf("no /proc/self/maps: %v", err)
	}
	return strings.Count(string(b), "\n")
}

// TestNoMappingLeak: each protected page splits the heap's mapping; once
// released, the mappings merge again, so a program that makes and drops
// keys all day (a fuzzer makes millions) does not run into
// vm.max_map_count.
func TestNoMappingLeak(t *testing.T) {
	before := mappings(t)
	live := make([]*Buffer, 0, 8)
	for i := 0; i < 20000; i++ {
		b := Alloc(64)
		live = append(live, b)
		if len(live) == cap(live) {
			for _, b := range live {
				b.Release()
			}
			live = live[:0]
		}
	}
	for _, b := range live {
		b.Release()
	}
	runtime.GC()
	after := mappings(t)
	if after-before > 200 {
		t.Fatalf("mappings grew from %d to %d over 20000 buffers", before, after)
	}
	t.Logf("mappings: %d before, %d after 20000 buffers", before, after)
}
