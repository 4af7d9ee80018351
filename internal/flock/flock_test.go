//go:build linux || darwin || freebsd || netbsd || openbsd || dragonfly

package flock

import (
	"os"
	"path/filepath"
	"testing"
)

// TestTry: a second open file of the same path cannot take the lock while
// the first holds it, and can once the first is closed.
func TestTry(t *testing.T) {
	path := filepath.Join(t.TempDir(), "lock")
	open := func() *os.File {
		f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
		if err != nil {
			t.Fatal(err)
		}
		return f
	}
	a, b := open(), open()
	defer b.Close()
	if ok, err := Try(a); err != nil || !ok {
		t.Fatalf("first Try = %v, %v; want true, nil", ok, err)
	}
	if ok, err := Try(b); err != nil || ok {
		t.Fatalf("second Try while held = %v, %v; want false, nil", ok, err)
	}
	a.Close()
	if ok, err := Try(b); err != nil || !ok {
		t.Fatalf("Try after the holder closed = %v, %v; want true, nil", ok, err)
	}
}
