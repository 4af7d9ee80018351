// Package crashfs is a model file system for power-cut tests of package
// durable: it keeps what a running program sees apart from what a disk
// holds after the power goes, and lists every state the disk can be found
// in after a crash at any operation.
//
// The model is the usual one for journaling file systems (ext4, xfs, btrfs
// in their default modes):
//
//   - File data written but not fsynced may be lost, torn (partly there)
//     or all there. Data fsynced is there.
//   - Directory operations (create, rename, link, remove) reach the disk in
//     the order they were made, but any number of the latest ones not
//     followed by an fsync of the directory may be lost: the disk holds a
//     prefix of them. Those followed by an fsync of the directory are there.
//   - A crash stops the program: the operation it hits and every later one
//     fail, and nothing more reaches the disk.
//
// It models one directory: the directory part of paths is ignored.
package crashfs

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/e2eimage/e2eimage/internal/durable"
)

// ErrCrashed is what every operation returns from the crash on.
var ErrCrashed = errors.New("crashfs: the machine lost power")

// inode is one file's data: what the program sees, and the last synced copy.
type inode struct {
	data   []byte
	synced []byte
	dirty  bool // written since the last Sync
}

type opKind int

const (
	opCreate opKind = iota
	opRename
	opLink
	opRemove
)

// metaOp is a directory operation not yet known to be on disk.
type metaOp struct {
	kind     opKind
	from, to string // base names; from only for rename and link
	ino      *inode // for create
}

// FS is the model. Its zero value is not usable; call New.
type FS struct {
	mu       sync.Mutex
	live     map[string]*inode // the namespace the program sees
	disk     map[string]*inode // the namespace known to be on disk
	pending  []metaOp          // directory operations after disk, in order
	ops      int               // operations made so far
	crashAt  int               // the operation that crashes; -1: none
	crashed  bool
	nextTemp int
}

// New returns an empty model with no crash planned.
func New() *FS {
	return &FS{live: map[string]*inode{}, disk: map[string]*inode{}, crashAt: -1}
}

// Put makes a file with data that is already safely on disk (the state
// before the write under test).
func (m *FS) Put(path string, data []byte) {
	m.mu.Lock()
	defer m.mu.Unlock()
	ino := &inode{data: slices.Clone(data), synced: slices.Clone(data)}
	name := filepath.Base(path)
	m.live[name], m.disk[name] = ino, ino
}

// CrashAt makes operation n (counting from 0, every FS and File method
// call is one) crash.
func (m *FS) CrashAt(n int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.crashAt = n
}

// Crashed reports whether the planned crash happened.
func (m *FS) Crashed() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.crashed
}

// Ops returns the number of operations made so far.
func (m *FS) Ops() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.ops
}

// step counts an operation; it fails once the crash has happened. The
// caller holds mu.
func (m *FS) step() error {
	if m.crashed {
		return ErrCrashed
	}
	if m.ops == m.crashAt {
		m.crashed = true
		return ErrCrashed
	}
	m.ops++
	return nil
}

// Outcome is one state of a file after a crash.
type Outcome struct {
	Exists bool
	Data   []byte
	How    string // which directory operations and data reached the disk
}

// Outcomes lists every state the file at path can be in on disk if the
// power goes now, and the temporary files (other names) the disk can hold.
func (m *FS) Outcomes(path string) (outs []Outcome, others []string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	name := filepath.Base(path)
	seen := map[string]bool{}
	for k := 0; k <= len(m.pending); k++ {
		ns := m.replay(k)
		for n := range ns {
			if n != name && !seen[n] {
				seen[n] = true
				others = append(others, n)
			}
		}
		ino, ok := ns[name]
		if !ok {
			outs = append(outs, Outcome{How: fmt.Sprintf("%d of %d directory operations", k, len(m.pending))})
			continue
		}
		for _, v := range ino.variants() {
			outs = append(outs, Outcome{Exists: true, Data: v.data,
				How: fmt.Sprintf("%d of %d directory operations, %s", k, len(m.pending), v.how)})
		}
	}
	slices.Sort(others)
	return outs, others
}

// replay returns the on-disk namespace with the first k pending operations.
func (m *FS) replay(k int) map[string]*inode {
	ns := make(map[string]*inode, len(m.disk))
	for n, ino := range m.disk {
		ns[n] = ino
	}
	for _, op := range m.pending[:k] {
		switch op.kind {
		case opCreate:
			ns[op.to] = op.ino
		case opRename:
			if ino, ok := ns[op.from]; ok {
				ns[op.to] = ino
				delete(ns, op.from)
			}
		case opLink:
			if ino, ok := ns[op.from]; ok {
				ns[op.to] = ino
			}
		case opRemove:
			delete(ns, op.to)
		}
	}
	return ns
}

type variant struct {
	data []byte
	how  string
}

// variants are the contents an inode can have on disk.
func (ino *inode) variants() []variant {
	if !ino.dirty {
		return []variant{{slices.Clone(ino.synced), "data synced"}}
	}
	torn := slices.Clone(ino.synced)
	if len(ino.data) > 1 {
		torn = slices.Clone(ino.data[:len(ino.data)/2])
	}
	return []variant{
		{slices.Clone(ino.synced), "unsynced data lost"},
		{torn, "unsynced data torn"},
		{slices.Clone(ino.data), "unsynced data all there"},
	}
}

// The durable.FS methods.

// CreateTemp makes an empty file named by pattern with a decimal number
// for "*", as os.CreateTemp does.
func (m *FS) CreateTemp(dir, pattern string) (durable.File, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.step(); err != nil {
		return nil, err
	}
	prefix, suffix, _ := strings.Cut(pattern, "*")
	for {
		m.nextTemp++
		name := prefix + strconv.Itoa(1000000+m.nextTemp) + suffix
		if _, ok := m.live[name]; !ok {
			return m.create(filepath.Join(dir, name)), nil
		}
	}
}

// create makes an empty file at path; the caller holds mu and has checked
// that there is none.
func (m *FS) create(path string) *file {
	name := filepath.Base(path)
	ino := &inode{}
	m.live[name] = ino
	m.pending = append(m.pending, metaOp{kind: opCreate, to: name, ino: ino})
	return &file{m: m, ino: ino, name: path}
}

// CreateExcl makes an empty file at path unless one is there.
func (m *FS) CreateExcl(path string) (durable.File, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.step(); err != nil {
		return nil, err
	}
	if _, ok := m.live[filepath.Base(path)]; ok {
		return nil, &fs.PathError{Op: "open", Path: path, Err: fs.ErrExist}
	}
	return m.create(path), nil
}

// Rename moves oldpath to newpath, replacing what is there.
func (m *FS) Rename(oldpath, newpath string) error { return m.name(opRename, oldpath, newpath) }

// Link gives oldpath's file the name newpath too; it fails if newpath
// exists.
func (m *FS) Link(oldpath, newpath string) error { return m.name(opLink, oldpath, newpath) }

// name is Rename (kind opRename) and Link (opLink).
func (m *FS) name(kind opKind, oldpath, newpath string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.step(); err != nil {
		return err
	}
	op := map[opKind]string{opRename: "rename", opLink: "link"}[kind]
	from, to := filepath.Base(oldpath), filepath.Base(newpath)
	ino, ok := m.live[from]
	if !ok {
		return &os.LinkError{Op: op, Old: oldpath, New: newpath, Err: fs.ErrNotExist}
	}
	if _, exists := m.live[to]; exists && kind == opLink {
		return &os.LinkError{Op: op, Old: oldpath, New: newpath, Err: fs.ErrExist}
	}
	m.live[to] = ino
	if kind == opRename {
		delete(m.live, from)
	}
	m.pending = append(m.pending, metaOp{kind: kind, from: from, to: to})
	return nil
}

func (m *FS) Remove(path string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.step(); err != nil {
		return err
	}
	name := filepath.Base(path)
	if _, ok := m.live[name]; !ok {
		return &fs.PathError{Op: "remove", Path: path, Err: fs.ErrNotExist}
	}
	delete(m.live, name)
	m.pending = append(m.pending, metaOp{kind: opRemove, to: name})
	return nil
}

// SyncDir puts every pending directory operation on disk.
func (m *FS) SyncDir(string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.step(); err != nil {
		return err
	}
	m.disk = m.replay(len(m.pending))
	m.pending = nil
	return nil
}

// file is an open file of the model.
type file struct {
	m      *FS
	ino    *inode
	name   string
	closed bool
}

func (f *file) Name() string { return f.name }

func (f *file) op() error {
	if err := f.m.step(); err != nil {
		return err
	}
	if f.closed {
		return os.ErrClosed
	}
	return nil
}

func (f *file) Write(p []byte) (int, error) {
	f.m.mu.Lock()
	defer f.m.mu.Unlock()
	if err := f.op(); err != nil {
		return 0, err
	}
	f.ino.data = append(f.ino.data, p...)
	f.ino.dirty = true
	return len(p), nil
}

func (f *file) Chmod(os.FileMode) error {
	f.m.mu.Lock()
	defer f.m.mu.Unlock()
	return f.op()
}

// Sync puts the file's data on disk (not its name: that takes SyncDir).
func (f *file) Sync() error {
	f.m.mu.Lock()
	defer f.m.mu.Unlock()
	if err := f.op(); err != nil {
		return err
	}
	f.ino.synced = slices.Clone(f.ino.data)
	f.ino.dirty = false
	return nil
}

func (f *file) Close() error {
	f.m.mu.Lock()
	defer f.m.mu.Unlock()
	if err := f.op(); err != nil {
		return err
	}
	f.closed = true
	return nil
}
