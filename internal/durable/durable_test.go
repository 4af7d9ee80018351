package durable_test

import (
	"bytes"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/e2eimage/e2eimage/internal/durable"
	"github.com/e2eimage/e2eimage/internal/durable/crashfs"
)

func TestReplaceAndCreateOnDisk(t *testing.T) {
	old := syscall.Umask(0)
	defer syscall.Umask(old)
	dir := t.TempDir()
	path := filepath.Join(dir, "state.json")

	if err := durable.Replace(path, []byte("one"), ""); err != nil {
		t.Fatal(err)
	}
	if err := durable.Replace(path, []byte("two"), ""); err != nil {
		t.Fatal(err)
	}
	assertFile(t, path, "two")

	key := filepath.Join(dir, "key")
	if err := durable.Create(key, []byte("secret")); err != nil {
		t.Fatal(err)
	}
	err := durable.Create(key, []byte("other"))
	if !errors.Is(err, fs.ErrExist) {
		t.Fatalf("Create over an existing file: %v, want fs.ErrExist", err)
	}
	assertFile(t, key, "secret")

	entries, _ := os.ReadDir(dir)
	if len(entries) != 2 {
		t.Fatalf("directory holds %d entries, want 2 (no temporary file left)", len(entries))
	}

	// A temporary file a crash left is removed by the next Create.
	stale := filepath.Join(dir, ".id.new123")
	if err := os.WriteFile(stale, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := durable.Create(filepath.Join(dir, "id"), []byte("x")); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(stale); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("stale temporary file not removed: %v", err)
	}

	// No directory: an error, nothing created.
	if err := durable.Replace(filepath.Join(dir, "missing", "f"), []byte("x"), ""); err == nil {
		t.Fatal("Replace into a missing directory succeeded")
	}
}

func assertFile(t *testing.T, path, want string) {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("%s has mode %v, want 0600", path, fi.Mode().Perm())
	}
	got, _ := os.ReadFile(path)
	if string(got) != want {
		t.Errorf("%s holds %q, want %q", path, got, want)
	}
}

func TestIsTemp(t *testing.T) {
	for _, c := range []struct {
		name, pattern string
		want          bool
	}{
		{".s.json.tmp123", ".s.json.tmp*", true},
		{".s.json.tmp", ".s.json.tmp*", false},
		{".s.json.tmp12a", ".s.json.tmp*", false},
		{"s.json", ".s.json.tmp*", false},
		{".k.new9.x", ".k.new*.x", true},
		{".k.new9", ".k.new*.x", false},
	} {
		if got := durable.IsTemp(c.name, c.pattern); got != c.want {
			t.Errorf("IsTemp(%q, %q) = %v", c.name, c.pattern, got)
		}
	}
}

// writer is a function under test: it writes data to path.
type writer func(path string, data []byte) error

// crashEverywhere runs write once per operation it makes, with the power
// cut at that operation, and once to the end followed by a power cut. For
// each it checks every disk state the model allows: the file must hold
// before (nil: no file) or data, and after a write that returned nil, data.
// It returns the violations and the numbers of crash points and states.
func crashEverywhere(t *testing.T, write writer, before []byte) (violations []string, points, states int) {
	t.Helper()
	const path = "/d/file"
	data := bytes.Repeat([]byte("new content "), 50)
	for at := 0; ; at++ {
		m := crashfs.New()
		if before != nil {
			m.Put(path, before)
		}
		restore := durable.Use(m)
		m.CrashAt(at)
		err := write(path, data)
		restore()
		done := !m.Crashed()
		if done && err != nil {
			t.Fatalf("write failed without a crash: %v", err)
		}
		outs, _ := m.Outcomes(path)
		points++
		for _, o := range outs {
			states++
			switch {
			case done && (!o.Exists || !bytes.Equal(o.Data, data)):
				violations = append(violations, "returned nil, then lost to a power cut: "+o.How)
			case o.Exists && bytes.Equal(o.Data, data):
			case before != nil && o.Exists && bytes.Equal(o.Data, before):
			case before == nil && !o.Exists:
			default:
				violations = append(violations, "torn or lost: "+o.How)
			}
		}
		if done {
			return violations, points, states
		}
	}
}

// TestPowerCutAtEveryOperation: Replace and Create leave the old or the
// whole new content whatever operation the power cut hits, and the new
// content once they returned.
func TestPowerCutAtEveryOperation(t *testing.T) {
	replace := func(path string, data []byte) error { return durable.Replace(path, data, "") }
	for _, c := range []struct {
		name   string
		write  writer
		before []byte
	}{
		{"Replace over a file", replace, []byte("old content")},
		{"Replace, no file before", replace, nil},
		{"Create", durable.Create, nil},
	} {
		v, points, states := crashEverywhere(t, c.write, c.before)
		for _, s := range v {
			t.Errorf("%s: %s", c.name, s)
		}
		if points < 6 {
			t.Errorf("%s: only %d crash points", c.name, points)
		}
		t.Logf("%s: %d crash points, %d disk states, %d violations", c.name, points, states, len(v))
	}
}

// TestModelCatchesUnsafeWriters proves the check has teeth: the usual
// mistakes each produce a state it rejects.
func TestModelCatchesUnsafeWriters(t *testing.T) {
	before := []byte("old content")
	for _, c := range []struct {
		name  string
		write writer
	}{
		{"in place, no temporary file", func(path string, data []byte) error {
			return unsafeWrite(path, data, false, true, true)
		}},
		{"rename without fsync of the data", func(path string, data []byte) error {
			return unsafeWrite(path, data, true, false, true)
		}},
		{"no fsync of the directory", func(path string, data []byte) error {
			return unsafeWrite(path, data, true, true, false)
		}},
	} {
		v, _, _ := crashEverywhere(t, c.write, before)
		if len(v) == 0 {
			t.Errorf("%s: no violation found", c.name)
		} else {
			t.Logf("%s: %d violations, e.g. %s", c.name, len(v), v[0])
		}
	}
}

// unsafeWrite writes the way careless code does, through the model. In
// place (temp false) it truncates path and writes into it (os.WriteFile);
// otherwise it writes a temporary file and renames it over path.
func unsafeWrite(path string, data []byte, temp, syncData, syncDir bool) error {
	fsys := durable.Current()
	f, err := fsys.CreateTemp(filepath.Dir(path), ".tmp*")
	if err != nil {
		return err
	}
	if !temp {
		// The truncated file is under its name before any data is written.
		if err := fsys.Rename(f.Name(), path); err != nil {
			return err
		}
	}
	if _, err := f.Write(data); err != nil {
		return err
	}
	if syncData {
		if err := f.Sync(); err != nil {
			return err
		}
	}
	if err := f.Close(); err != nil {
		return err
	}
	if temp {
		if err := fsys.Rename(f.Name(), path); err != nil {
			return err
		}
	}
	if syncDir {
		return fsys.SyncDir(filepath.Dir(path))
	}
	return nil
}

// noLinks is the operating system's file system as FAT shows it: no hard
// links.
type noLinks struct {
	durable.FS
	links int
}

func (n *noLinks) Link(oldpath, newpath string) error {
	n.links++
	return &os.LinkError{Op: "link", Old: oldpath, New: newpath, Err: syscall.EPERM}
}

// TestCreateWithoutHardLinks: where link is refused, Create writes in
// place, still refusing to replace a file and leaving no temporary file.
func TestCreateWithoutHardLinks(t *testing.T) {
	fsys := &noLinks{FS: durable.Current()}
	defer durable.Use(fsys)()
	dir := t.TempDir()
	key := filepath.Join(dir, "key")
	if err := durable.Create(key, []byte("secret")); err != nil {
		t.Fatal(err)
	}
	if fsys.links != 1 {
		t.Fatalf("link tried %d times", fsys.links)
	}
	assertFile(t, key, "secret")
	if err := durable.Create(key, []byte("other")); !errors.Is(err, fs.ErrExist) {
		t.Fatalf("Create over an existing file: %v", err)
	}
	assertFile(t, key, "secret")
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Fatalf("directory holds %d entries, want 1", len(entries))
	}
}

// TestCreateExistingWritesNothing: when the file exists, Create fails
// before the data (a key) reaches the disk under any name.
func TestCreateExistingWritesNothing(t *testing.T) {
	m := crashfs.New()
	defer durable.Use(m)()
	dir := t.TempDir()
	key := filepath.Join(dir, "key")
	if err := os.WriteFile(key, []byte("old"), 0o600); err != nil {
		t.Fatal(err)
	}
	// The model sees the same name: it must not be asked for anything.
	if err := durable.Create(key, []byte("new")); !errors.Is(err, fs.ErrExist) {
		t.Fatalf("Create over an existing file: %v", err)
	}
	if n := m.Ops(); n != 0 {
		t.Fatalf("Create made %d file system operations before refusing", n)
	}
}
