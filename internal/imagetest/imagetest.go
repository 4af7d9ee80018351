// Package imagetest builds realistic disk images for tests from directory
// trees, with the tools distributions use and without root: mkfs.ext4 -d
// (e2fsprogs), mkfs.xfs -p (xfsprogs), sfdisk (fdisk), qemu-img and
// qemu-io (qemu-utils) and genisoimage. A missing tool fails the test
// under CI and skips it elsewhere (testenv.Tool).
//
// Everything is written under the test's temporary directory as sparse
// files, so a disk of a few tens of MiB takes little real space.
package imagetest

import (
	"bytes"
	"crypto/rand"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/e2eimage/e2eimage/internal/testenv"
)

// Install is the Debian command that installs every tool this package
// runs.
const Install = "apt-get install -y e2fsprogs xfsprogs fdisk qemu-utils genisoimage"

// Entry is one file, directory or symbolic link of a tree.
type Entry struct {
	Path string // slash-separated, relative to the root ("etc/os-release")
	Data string // a regular file's content
	Link string // when set, the entry is a symbolic link to Link
	Dir  bool   // an (empty) directory
}

// File returns a regular-file entry.
func File(path, data string) Entry { return Entry{Path: path, Data: data} }

// Link returns a symbolic-link entry.
func Link(path, target string) Entry { return Entry{Path: path, Link: target} }

// Dir returns a directory entry.
func Dir(path string) Entry { return Entry{Path: path, Dir: true} }

// WriteTree writes the entries under a new directory and returns it.
func WriteTree(tb testing.TB, entries []Entry) string {
	tb.Helper()
	root := filepath.Join(tb.TempDir(), "tree")
	if err := os.MkdirAll(root, 0o755); err != nil {
		tb.Fatal(err)
	}
	for _, e := range entries {
		p := filepath.Join(root, filepath.FromSlash(e.Path))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			tb.Fatal(err)
		}
		var err error
		switch {
		case e.Link != "":
			err = os.Symlink(e.Link, p)
		case e.Dir:
			err = os.MkdirAll(p, 0o755)
		default:
			err = os.WriteFile(p, []byte(e.Data), 0o644)
		}
		if err != nil {
			tb.Fatal(err)
		}
	}
	return root
}

// Tool returns the path of a tool this package runs.
func Tool(tb testing.TB, name string) string {
	tb.Helper()
	return testenv.Tool(tb, name, Install)
}

// Run runs a tool and fails the test with its output when it fails.
func Run(tb testing.TB, env []string, name string, args ...string) []byte {
	tb.Helper()
	cmd := exec.Command(Tool(tb, name), args...)
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		tb.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return out
}

// sparseFile creates a new file of size bytes, all holes.
func sparseFile(tb testing.TB, name string, size int64) string {
	tb.Helper()
	p := filepath.Join(tb.TempDir(), name)
	f, err := os.OpenFile(p, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	if err := f.Truncate(size); err != nil {
		tb.Fatal(err)
	}
	return p
}

// Ext4 makes an ext4 file system of size bytes holding the tree at dir
// (mkfs.ext4 -d, the way distributions build cloud images without root)
// and returns its path.
func Ext4(tb testing.TB, dir string, size int64, label string) string {
	tb.Helper()
	p := sparseFile(tb, "ext4.img", size)
	Run(tb, nil, "mkfs.ext4", "-q", "-F", "-L", label, "-d", dir, p)
	return p
}

// XFS makes an XFS file system of size bytes holding the tree at dir and
// returns its path. mkfs.xfs reads the tree from a prototype file (-p),
// which this function writes; the TEST_DEV, TEST_DIR and QA_CHECK_FS
// variables let mkfs.xfs make a file system below its 300 MB floor, as
// xfstests does.
func XFS(tb testing.TB, dir string, size int64, label string) string {
	tb.Helper()
	var proto bytes.Buffer
	proto.WriteString("/dev/null\n0 0\nd--755 0 0\n")
	if err := writeProto(&proto, dir, 1); err != nil {
		tb.Fatal(err)
	}
	proto.WriteString("$\n")
	pf := filepath.Join(tb.TempDir(), "xfs.proto")
	if err := os.WriteFile(pf, proto.Bytes(), 0o644); err != nil {
		tb.Fatal(err)
	}
	p := sparseFile(tb, "xfs.img", size)
	Run(tb, []string{"TEST_DEV=1", "TEST_DIR=1", "QA_CHECK_FS=1"}, "mkfs.xfs", "-q", "-f", "-L", label, "-p", pf, p)
	return p
}

// writeProto writes the prototype-file lines of the entries of dir
// (xfsprogs mkfs/proto.c: name, mode field, uid, gid, and a source file
// or a link target; "$" ends a directory).
func writeProto(w io.Writer, dir string, depth int) error {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	indent := strings.Repeat(" ", depth)
	for _, e := range ents {
		p := filepath.Join(dir, e.Name())
		fi, err := os.Lstat(p)
		if err != nil {
			return err
		}
		switch {
		case fi.Mode()&os.ModeSymlink != 0:
			t, err := os.Readlink(p)
			if err != nil {
				return err
			}
			fmt.Fprintf(w, "%s%s l--777 0 0 %s\n", indent, e.Name(), t)
		case fi.IsDir():
			fmt.Fprintf(w, "%s%s d--755 0 0\n", indent, e.Name())
			if err := writeProto(w, p, depth+1); err != nil {
				return err
			}
			fmt.Fprintf(w, "%s$\n", indent)
		default:
			fmt.Fprintf(w, "%s%s ---644 0 0 %s\n", indent, e.Name(), p)
		}
	}
	return nil
}

// Part is one partition of a disk Build makes.
type Part struct {
	// Type is the sfdisk type: a shortcut ("L" Linux, "V" LVM, "U" EFI
	// system, "S" swap), an MBR hex code ("7" for NTFS) or a GPT type GUID.
	Type string
	// Size is the partition's size in bytes, a multiple of 1 MiB; 0 takes
	// the rest of the disk (last partition only).
	Size int64
	// Image is copied to the start of the partition (a file-system image),
	// or nothing when empty.
	Image string
	// Head is written at the start of the partition after Image (a crafted
	// signature, for instance).
	Head []byte
	// Bootable sets the MBR boot flag.
	Bootable bool
}

// Disk makes a whole disk of size bytes with a partition table of kind
// "dos" (MBR) or "gpt", written by sfdisk, the partitions starting at 1 MiB
// and aligned on 1 MiB, and returns its path.
func Disk(tb testing.TB, kind string, size int64, parts ...Part) string {
	tb.Helper()
	p := sparseFile(tb, "disk.raw", size)
	var script strings.Builder
	fmt.Fprintf(&script, "label: %s\n", kind)
	start := int64(1 << 20)
	starts := make([]int64, len(parts))
	for i, pt := range parts {
		starts[i] = start
		fmt.Fprintf(&script, "start=%d, ", start/512)
		if pt.Size > 0 {
			fmt.Fprintf(&script, "size=%d, ", pt.Size/512)
		}
		fmt.Fprintf(&script, "type=%s", pt.Type)
		if pt.Bootable {
			script.WriteString(", bootable")
		}
		script.WriteString("\n")
		start += pt.Size
	}
	cmd := exec.Command(Tool(tb, "sfdisk"), "--no-reread", "--no-tell-kernel", "-q", p)
	cmd.Stdin = strings.NewReader(script.String())
	if out, err := cmd.CombinedOutput(); err != nil {
		tb.Fatalf("sfdisk: %v\n%s\nscript:\n%s", err, out, script.String())
	}
	f, err := os.OpenFile(p, os.O_RDWR, 0)
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	for i, pt := range parts {
		if pt.Image != "" {
			copySparse(tb, f, starts[i], pt.Image)
		}
		if pt.Head != nil {
			if _, err := f.WriteAt(pt.Head, starts[i]); err != nil {
				tb.Fatal(err)
			}
		}
	}
	return p
}

// copySparse copies the file at src into f at off, skipping its all-zero
// 64 KiB chunks so that holes stay holes.
func copySparse(tb testing.TB, f *os.File, off int64, src string) {
	tb.Helper()
	in, err := os.Open(src)
	if err != nil {
		tb.Fatal(err)
	}
	defer in.Close()
	buf := make([]byte, 64<<10)
	for pos := int64(0); ; {
		n, err := io.ReadFull(in, buf)
		if n > 0 && slices.ContainsFunc(buf[:n], func(c byte) bool { return c != 0 }) {
			if _, werr := f.WriteAt(buf[:n], off+pos); werr != nil {
				tb.Fatal(werr)
			}
		}
		pos += int64(n)
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			return
		}
		if err != nil {
			tb.Fatal(err)
		}
	}
}

// Convert converts the image at src to format (qemu-img convert -O format,
// with extra options such as "-c" or "-o", "compression_type=zstd") and
// returns the new file's path.
func Convert(tb testing.TB, src, format string, extra ...string) string {
	tb.Helper()
	dst := filepath.Join(tb.TempDir(), "converted."+format)
	args := append([]string{"convert", "-O", format}, extra...)
	args = append(args, src, dst)
	Run(tb, nil, "qemu-img", args...)
	return dst
}

// RawOf returns the virtual disk of the image at src, of qemu-img format
// inFormat ("vpc", "qcow2"...), as qemu-img reads it (qemu-img convert -O
// raw). The format is given because qemu-img's probe only sees a VHD that
// starts with a footer copy: it would read a fixed VHD as raw.
func RawOf(tb testing.TB, src, inFormat string) []byte {
	tb.Helper()
	b, err := os.ReadFile(Convert(tb, src, "raw", "-f", inFormat))
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// RandomFile writes n random bytes to a new file and returns its path.
func RandomFile(tb testing.TB, n int) string {
	tb.Helper()
	b := make([]byte, n)
	_, _ = rand.Read(b)
	p := filepath.Join(tb.TempDir(), "random.bin")
	if err := os.WriteFile(p, b, 0o644); err != nil {
		tb.Fatal(err)
	}
	return p
}
