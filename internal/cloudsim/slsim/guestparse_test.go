package slsim

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"io/fs"
	"os"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/e2eimage/e2eimage/internal/imagetest"
	"github.com/e2eimage/e2eimage/internal/sampleimage"
	"github.com/e2eimage/e2eimage/vhd"
)

// mapRoot is a guestRoot over an in-memory tree.
type mapRoot struct{ fs fstest.MapFS }

func (m mapRoot) ReadDir(name string) ([]fs.DirEntry, error) { return m.fs.ReadDir(name) }

func (m mapRoot) ReadFile(name string, limit int64) ([]byte, bool, error) {
	b, err := m.fs.ReadFile(name)
	if err != nil {
		return nil, false, err
	}
	if int64(len(b)) > limit {
		return b[:limit], true, nil
	}
	return b, false, nil
}

func (m mapRoot) Open(name string) (io.ReadCloser, error) { return m.fs.Open(name) }

func root(files map[string]string) mapRoot {
	m := fstest.MapFS{}
	for k, v := range files {
		m[k] = &fstest.MapFile{Data: []byte(v)}
	}
	return mapRoot{m}
}

func TestUpstreamVersion(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in   string
		want []int
		less bool // older than 0.7.7
	}{
		{"23.4.4-0ubuntu0~22.04.1", []int{23, 4, 4}, false},
		{"0.7.5-0ubuntu1.23", []int{0, 7, 5}, true},
		{"0.7.7", []int{0, 7, 7}, false},
		{"0.7.6+git20150417-0ubuntu1", []int{0, 7, 6}, true}, // "6+git…" is the last component
		{"1:0.7.9-2", []int{0, 7, 9}, false},
		{"0.7.9~bzr1203-0ubuntu1", []int{0, 7, 9}, false},
		{"23.4", []int{23, 4}, false},
		{"0.7", []int{0, 7}, true},
	} {
		got, ok := upstreamVersion(tc.in)
		if !ok || !equalInts(got, tc.want) {
			t.Errorf("upstreamVersion(%q) = %v, %v; want %v", tc.in, got, ok, tc.want)
		}
		if l := versionLess(got, minCloudInit); l != tc.less {
			t.Errorf("%q older than 0.7.7: %v, want %v", tc.in, l, tc.less)
		}
	}
	for _, bad := range []string{"", "git-abc", "~1"} {
		if v, ok := upstreamVersion(bad); ok {
			t.Errorf("upstreamVersion(%q) = %v, want none", bad, v)
		}
	}
}

func equalInts(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestDpkgCloudInit(t *testing.T) {
	t.Parallel()
	para := func(pkg, status, ver string) string {
		return "Package: " + pkg + "\nStatus: " + status + "\nDescription: x\n long text\n .\n more\nVersion: " + ver + "\n"
	}
	for _, tc := range []struct {
		name, status, want string
	}{
		{"last paragraph, no blank line after it", para("a", "install ok installed", "1") + "\n" + para("cloud-init", "install ok installed", "22.1-1"), "22.1-1"},
		{"among others", para("a", "install ok installed", "1") + "\n" + para("cloud-init", "install ok installed", "22.2-1") + "\n" + para("z", "install ok installed", "2") + "\n", "22.2-1"},
		{"removed, configuration kept", para("cloud-init", "deinstall ok config-files", "22.1-1") + "\n", ""},
		{"purged record", para("cloud-init", "purge ok not-installed", "22.1-1") + "\n", ""},
		{"half-configured still has its files", para("cloud-init", "install ok half-configured", "22.3-1") + "\n", "22.3-1"},
		{"another package mentions it", para("cloud-initramfs-tools", "install ok installed", "0.47") + "\n", ""},
		{"continuation line that looks like a field", "Package: a\nDescription: x\n Package: cloud-init\n Version: 9\n\n", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := dpkgCloudInit(root(map[string]string{"var/lib/dpkg/status": tc.status}))
			if tc.want == "" {
				if got != nil || !errors.Is(err, fs.ErrNotExist) {
					t.Fatalf("got %+v, %v; want none", got, err)
				}
				return
			}
			if err != nil || got == nil || got.version != tc.want || got.where != "/var/lib/dpkg/status" {
				t.Fatalf("got %+v, %v; want version %s", got, err, tc.want)
			}
		})
	}
	if _, err := dpkgCloudInit(root(nil)); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("no status file: %v", err)
	}
}

func TestPythonCloudInit(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		path, want string
	}{
		{"usr/lib/python3/dist-packages/cloud_init-23.4.4.egg-info/PKG-INFO", "23.4.4"},
		{"usr/lib/python3.12/site-packages/cloud_init-24.1.dist-info/METADATA", "24.1"},
		{"usr/lib/python3.9/site-packages/cloud_init-23.4-py3.9.egg-info/PKG-INFO", "23.4"},
		{"usr/local/lib/python3.11/dist-packages/cloud_init-0.7.5.dist-info/METADATA", "0.7.5"},
		{"usr/lib/python3/dist-packages/cloudinit/__init__.py", ""},                // the code alone is no record
		{"usr/lib/python2.7/dist-packages/cloud_init-0.7.9.egg-info/PKG-INFO", ""}, // not Python 3
	} {
		got, err := pythonCloudInit(root(map[string]string{tc.path: "x"}))
		switch {
		case tc.want == "" && (got != nil || !errors.Is(err, fs.ErrNotExist)):
			t.Errorf("%s: got %+v, %v; want none", tc.path, got, err)
		case tc.want != "" && (err != nil || got == nil || got.version != tc.want):
			t.Errorf("%s: got %+v, %v; want %s", tc.path, got, err, tc.want)
		}
	}
}

func TestEffectiveDatasources(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		files map[string]string
		list  string // joined with ","; "-" when not set
		from  string
		ok    bool
	}{
		{"no configuration", nil, "-", "", true},
		{"cloud.cfg sets it", map[string]string{"etc/cloud/cloud.cfg": "datasource_list: [ConfigDrive, None]\n"}, "ConfigDrive,None", "/etc/cloud/cloud.cfg", true},
		{"block list", map[string]string{"etc/cloud/cloud.cfg": "datasource_list:\n  - NoCloud\n  - IBMCloud\n"}, "NoCloud,IBMCloud", "/etc/cloud/cloud.cfg", true},
		{"the last .cfg in name order wins", map[string]string{
			"etc/cloud/cloud.cfg":                  "datasource_list: [Ec2]\n",
			"etc/cloud/cloud.cfg.d/90_dpkg.cfg":    "datasource_list: [ConfigDrive]\n",
			"etc/cloud/cloud.cfg.d/10_azure.cfg":   "datasource_list: [Azure]\n",
			"etc/cloud/cloud.cfg.d/99_other.cfg":   "apt: {}\n",
			"etc/cloud/cloud.cfg.d/README":         "datasource_list: [Ec2]\n",
			"etc/cloud/cloud.cfg.d/95_x.cfg.dpkg-": "datasource_list: [Ec2]\n",
		}, "ConfigDrive", "/etc/cloud/cloud.cfg.d/90_dpkg.cfg", true},
		{"excluded", map[string]string{"etc/cloud/cloud.cfg.d/99.cfg": "datasource_list: [ Ec2, None ]\n"}, "Ec2,None", "/etc/cloud/cloud.cfg.d/99.cfg", false},
		{"a string", map[string]string{"etc/cloud/cloud.cfg": "datasource_list: 'NoCloud, ConfigDrive'\n"}, "NoCloud,ConfigDrive", "/etc/cloud/cloud.cfg", true},
		{"a file that is not YAML is skipped", map[string]string{
			"etc/cloud/cloud.cfg":          "datasource_list: [ConfigDrive]\n",
			"etc/cloud/cloud.cfg.d/99.cfg": "datasource_list: [Ec2\n  : : :\n",
		}, "ConfigDrive", "/etc/cloud/cloud.cfg", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ds, err := effectiveDatasources(root(tc.files))
			if err != nil {
				t.Fatal(err)
			}
			got := "-"
			if ds.list != nil {
				got = strings.Join(ds.list, ",")
			}
			if got != tc.list || ds.from != tc.from {
				t.Fatalf("datasource_list %s from %q, want %s from %q", got, ds.from, tc.list, tc.from)
			}
			if ds.list != nil && allowsClassicConfigDisk(ds.list) != tc.ok {
				t.Fatalf("allowed %v, want %v", !tc.ok, tc.ok)
			}
		})
	}
}

func TestSeparateMounts(t *testing.T) {
	t.Parallel()
	r := root(map[string]string{"etc/fstab": "# /var was on /dev/sda3\nLABEL=root / ext4 defaults 0 1\n/dev/vg/var /var xfs defaults 0 2\n/dev/vg/usr_local /usr/local ext4 defaults 0 2\n/dev/sdb1 /data ext4 defaults 0 2\n"})
	if got := strings.Join(separateMounts(r), " "); got != "/var /usr/local" {
		t.Fatalf("separate mounts %q", got)
	}
}

// mbrEntry writes MBR entry i of the table at b.
func mbrEntry(b []byte, i int, typ byte, start, count uint32) {
	e := b[446+16*i:]
	e[4] = typ
	binary.LittleEndian.PutUint32(e[8:], start)
	binary.LittleEndian.PutUint32(e[12:], count)
	b[510], b[511] = 0x55, 0xAA
}

func TestReadMBRWithLogicalPartitions(t *testing.T) {
	t.Parallel()
	d := make([]byte, 64<<20)
	sectors := uint32(len(d) / 512)
	mbrEntry(d, 0, 0x83, 2048, 16384)
	mbrEntry(d, 1, 0x05, 18432, sectors-18432) // extended
	mbrEntry(d, 2, 0x00, 0, 0)
	// Two logical partitions: EBR at the start of the extended one, the
	// next at +20480 sectors.
	ebr1 := d[18432*512:]
	mbrEntry(ebr1, 0, 0x82, 2048, 8192)
	mbrEntry(ebr1, 1, 0x05, 20480, 20480)
	ebr2 := d[(18432+20480)*512:]
	mbrEntry(ebr2, 0, 0x83, 2048, 16384)
	parts, err := readPartitions(bytes.NewReader(d), int64(len(d)))
	if err != nil {
		t.Fatal(err)
	}
	want := []partition{
		{number: 1, start: 2048 * 512, size: 16384 * 512},
		{number: 5, start: (18432 + 2048) * 512, size: 8192 * 512},
		{number: 6, start: (18432 + 20480 + 2048) * 512, size: 16384 * 512},
	}
	if len(parts) != len(want) {
		t.Fatalf("partitions %+v", parts)
	}
	for i, p := range parts {
		if p.number != want[i].number || p.start != want[i].start || p.size != want[i].size {
			t.Errorf("partition %d: %+v, want %+v", i, p, want[i])
		}
	}

	// A chain that points back at itself ends.
	mbrEntry(ebr2, 1, 0x05, 0, 20480)
	if parts, err := readPartitions(bytes.NewReader(d), int64(len(d))); err != nil || len(parts) != 3 {
		t.Fatalf("looping chain: %d partitions, %v", len(parts), err)
	}
}

// TestReadGPT reads a GPT that sfdisk wrote, then the same disk with the
// primary header damaged (the backup is used), then with both damaged.
func TestReadGPT(t *testing.T) {
	t.Parallel()
	p := imagetest.Disk(t, "gpt", 16<<20,
		imagetest.Part{Type: "U", Size: 2 << 20},
		imagetest.Part{Type: "0FC63DAF-8483-4772-8E79-3D69D8477DE4", Size: 8 << 20})
	d, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	check := func(d []byte) {
		t.Helper()
		parts, err := readPartitions(bytes.NewReader(d), int64(len(d)))
		if err != nil {
			t.Fatal(err)
		}
		if len(parts) != 2 || parts[0].number != 1 || parts[0].start != 1<<20 || parts[0].size != 2<<20 ||
			parts[1].number != 2 || parts[1].start != 3<<20 || parts[1].size != 8<<20 ||
			parts[1].kind != "GPT type 0fc63daf-8483-4772-8e79-3d69d8477de4" {
			t.Fatalf("partitions %+v", parts)
		}
	}
	check(d)
	d[512+16] ^= 0xFF // the primary header's stored CRC
	check(d)
	d[len(d)-512+16] ^= 0xFF // the backup header's CRC
	if _, err := readPartitions(bytes.NewReader(d), int64(len(d))); !errors.Is(err, errNoPartitionTable) {
		t.Fatalf("both headers damaged: %v", err)
	}
}

func TestProbeFS(t *testing.T) {
	t.Parallel()
	at := func(off int, sig string) []byte {
		b := make([]byte, 1<<20)
		copy(b[off:], sig)
		return b
	}
	ext := make([]byte, 1<<20)
	binary.LittleEndian.PutUint16(ext[1024+56:], 0xEF53)
	lvm := at(512, "LABELONE")
	copy(lvm[512+24:], "LVM2 001")
	for _, tc := range []struct {
		b    []byte
		want fsKind
	}{
		{ext, fsExt},
		{at(0, "XFSB"), fsXFS},
		{at(0, "LUKS\xba\xbe"), fsLUKS},
		{at(3, "NTFS    "), fsNTFS},
		{at(3, "-FVE-FS-"), fsBitLock},
		{at(4086, "SWAPSPACE2"), fsSwap},
		{at(82, "FAT32   "), fsFAT},
		{lvm, fsLVM},
		{at(0x10040, "_BHRfS_M"), fsBtrfs},
		{make([]byte, 1<<20), fsNone},
	} {
		got, err := probeFS(io.NewSectionReader(bytes.NewReader(tc.b), 0, int64(len(tc.b))))
		if err != nil || got != tc.want {
			t.Errorf("probe: %q, %v; want %q", got, err, tc.want)
		}
	}
}

// FuzzCheckGuestDisk feeds damaged disks (the sample disk with bytes
// patched in, as a fixed VHD) to the guest checks: whatever the bytes, they
// end with a summary or an import failure, never a panic, and within their
// read bounds.
func FuzzCheckGuestDisk(f *testing.F) {
	disk, err := sampleimage.Build(sampleimage.Options{Size: sampleimage.MinSize})
	if err != nil {
		f.Fatal(err)
	}
	f.Add(uint32(0), []byte{0})
	f.Add(uint32(1<<20+1024), []byte("\x53\xef"))
	f.Add(uint32(1<<20+2048), bytes.Repeat([]byte{0xFF}, 512))
	f.Add(uint32(1<<20+8192), bytes.Repeat([]byte{0x41}, 4096))
	f.Fuzz(func(t *testing.T, off uint32, patch []byte) {
		d := bytes.Clone(disk)
		if int(off) < len(d) {
			copy(d[off:], patch)
		}
		var v bytes.Buffer
		if err := vhd.WriteFixed(&v, bytes.NewReader(d), int64(len(d))); err != nil {
			t.Fatal(err)
		}
		img, err := inspectImage(bytes.NewReader(v.Bytes()), int64(v.Len()))
		if err != nil {
			t.Fatal(err)
		}
		s, err := img.checkGuest(nil, guestCheck{cloudInit: true})
		var f *importFailure
		if err != nil && !errors.As(err, &f) {
			t.Fatalf("an error that is no import failure: %v", err)
		}
		if err == nil && !strings.HasPrefix(s, "checked: ") && !strings.HasPrefix(s, "not checked: ") {
			t.Fatalf("summary %q", s)
		}
		if img.guestBytes > guestReadBudget {
			t.Fatalf("read %d bytes", img.guestBytes)
		}
	})
}

// TestGuestDiskBounds checks that the guest disk stops at its bounds: a
// number of reads and a number of bytes fetched.
func TestGuestDiskBounds(t *testing.T) {
	t.Parallel()
	raw := make([]byte, 4<<20)
	var v bytes.Buffer
	if err := vhd.WriteFixed(&v, bytes.NewReader(raw), int64(len(raw))); err != nil {
		t.Fatal(err)
	}
	img, err := inspectImage(bytes.NewReader(v.Bytes()), int64(v.Len()))
	if err != nil {
		t.Fatal(err)
	}
	g := newGuestDisk(img.f, nil)
	b := make([]byte, 512)
	for i := range guestReadCalls {
		if _, err := g.ReadAt(b, 0); err != nil {
			t.Fatalf("read %d: %v", i, err)
		}
	}
	if _, err := g.ReadAt(b, 0); !errors.Is(err, errReadBudget) {
		t.Fatalf("read past the bound of calls: %v", err)
	}
	if g.fetched != guestChunk {
		t.Fatalf("fetched %d bytes for reads of one chunk", g.fetched)
	}

	g = newGuestDisk(img.f, nil)
	g.budget = 3 * guestChunk
	big := make([]byte, 4*guestChunk)
	n, err := g.ReadAt(big, 0)
	if !errors.Is(err, errReadBudget) || n != 3*guestChunk || g.fetched != 3*guestChunk {
		t.Fatalf("read %d bytes, fetched %d, %v; want the budget's %d and errReadBudget", n, g.fetched, err, 3*guestChunk)
	}
	g.release()
	if len(g.cache) != 0 {
		t.Fatal("release kept plaintext")
	}
}
