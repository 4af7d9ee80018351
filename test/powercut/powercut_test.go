// Package powercut cuts the power, in a model of a journaling file system
// (internal/durable/crashfs), at every file system operation of the files
// the SDK must never lose or tear: the state file, key files and secret
// files. For every state the disk can be found in afterwards it loads the
// file with the SDK's own reader: it must give the old content or the whole
// new content (no file at all where there was none), and the new content
// once the write returned. SIGKILL (test/killflow) only loses what the
// process had not handed to the kernel; a power cut also loses what the
// kernel had not written, which only fsync ordering protects.
package powercut

import (
	"bytes"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/e2eimage/e2eimage/vhdcrypt"

	"github.com/e2eimage/e2eimage/cos"
	"github.com/e2eimage/e2eimage/e2e"
	"github.com/e2eimage/e2eimage/e2e/ibmcloud"
	"github.com/e2eimage/e2eimage/internal/durable"
	"github.com/e2eimage/e2eimage/internal/durable/crashfs"
	"github.com/e2eimage/e2eimage/secret"
)

// subject is one kind of file: how to write its new content and how to
// read a file back into a comparable form (err for a file the SDK refuses).
type subject struct {
	name   string
	before []byte // content on disk before the write; nil: no file
	write  func(path string) error
	read   func(path string) (string, error)
	want   string // read's result for the new content
	old    string // read's result for before
	// temps is the pattern of the temporary files a crash may leave, which
	// the next run removes (e2e.Run for the state file, the next Create
	// for key and secret files).
	temps string
}

func stateSubject(t *testing.T) subject {
	t0 := time.Date(2026, 11, 27, 8, 0, 0, 0, time.UTC)
	old := &e2e.State{Name: "web-encrypted", RootKeyCRN: "crn:v1:bluemix:public:kms:us-south:a/acct:inst:key:k1",
		Bucket: "images", Object: "web.vhd", WrappedDEK: "d3JhcHBlZA==", DEKSize: 64,
		Upload: &cos.UploadState{Bucket: "images", Key: "web.vhd", UploadID: "upload-1"}, Started: t0, Updated: t0}
	dir := t.TempDir()
	oldPath := filepath.Join(dir, "old.json")
	if err := old.Save(oldPath); err != nil {
		t.Fatal(err)
	}
	before, err := os.ReadFile(oldPath)
	if err != nil {
		t.Fatal(err)
	}
	next := *old
	next.Upload = nil
	next.Uploaded = &e2e.ObjectResult{Bucket: "images", Key: "web.vhd", Size: 1 << 30}
	next.ImportRequested, next.TemplateID = true, 4242
	next.Updated = t0.Add(time.Hour)
	read := func(path string) (string, error) {
		st, err := e2e.LoadState(path)
		if err != nil {
			return "", err
		}
		return st.Updated.String() + "/" + string(rune('0'+st.TemplateID%10)), nil
	}
	return subject{
		name: "state file", before: before,
		write: func(path string) error { s := next; return s.Save(path) },
		read:  read,
		want:  next.Updated.String() + "/2", old: old.Updated.String() + "/0",
		temps: ".run.file.tmp*",
	}
}

func keySubject(t *testing.T) subject {
	key := bytes.Repeat([]byte{0x5c, 0xa3}, 32)
	return subject{
		name: "key file",
		write: func(path string) error {
			dek, err := vhdcrypt.DEKFromBytes(key)
			if err != nil {
				return err
			}
			defer dek.Zero()
			return vhdcrypt.WriteKeyFile(path, dek)
		},
		read: func(path string) (string, error) {
			dek, err := vhdcrypt.ReadKeyFile(path)
			if err != nil {
				return "", err
			}
			defer dek.Zero()
			return string(dek.Bytes()), nil
		},
		want:  string(key),
		temps: ".run.file.new*",
	}
}

func secretSubject() subject {
	const apiKey = "an-api-key-shown-only-once-0123456789"
	return subject{
		name: "secret file",
		write: func(path string) error {
			return ibmcloud.WriteSecretFile(path, secret.NewString(apiKey))
		},
		read: func(path string) (string, error) {
			s, err := ibmcloud.ReadSecretFile(path)
			if err != nil {
				return "", err
			}
			return s.Reveal(), nil
		},
		want:  apiKey,
		temps: ".run.file.new*",
	}
}

func TestPowerCutAtEveryOperation(t *testing.T) {
	var writers, points, states, corrupt, lost, leftovers int
	for _, s := range []subject{stateSubject(t), keySubject(t), secretSubject()} {
		writers++
		p, st, c, l, left := cutEverywhere(t, s)
		if p < 6 {
			t.Errorf("%s: only %d crash points: the writer does fewer operations than the protocol needs", s.name, p)
		}
		points, states, corrupt, lost, leftovers = points+p, states+st, corrupt+c, lost+l, leftovers+left
		t.Logf("%s: %d crash points, %d disk states, %d corrupt, %d lost after return, %d leftover temporary names",
			s.name, p, st, c, l, left)
	}
	if states == 0 {
		t.Errorf("no disk state was loaded after %d crash points", points)
	}
	t.Logf("HARDEN powercut writers=%d crash_points=%d disk_states=%d corrupt=%d lost_after_return=%d leftover_temps=%d",
		writers, points, states, corrupt, lost, leftovers)
}

// cutEverywhere writes s once per operation, with the power cut there, and
// once to the end followed by a power cut.
func cutEverywhere(t *testing.T, s subject) (points, states, corrupt, lost, leftovers int) {
	const path = "/data/run.file"
	dir := t.TempDir()
	for at := 0; ; at++ {
		m := crashfs.New()
		if s.before != nil {
			m.Put(path, s.before)
		}
		restore := durable.Use(m)
		m.CrashAt(at)
		err := s.write(path)
		restore()
		done := !m.Crashed()
		if done && err != nil {
			t.Fatalf("%s: write failed without a crash: %v", s.name, err)
		}
		if !done && err == nil {
			t.Errorf("%s: the power went at operation %d, yet the write reported success", s.name, at)
		}
		points++
		outs, others := m.Outcomes(path)
		for _, n := range others {
			if !durable.IsTemp(n, s.temps) {
				t.Errorf("%s: a crash can leave %q, which the next run does not remove", s.name, n)
			}
		}
		leftovers += len(others)
		for _, o := range outs {
			states++
			got, rerr := "", fs.ErrNotExist
			if o.Exists {
				f := filepath.Join(dir, "after-crash")
				if err := os.WriteFile(f, o.Data, 0o600); err != nil {
					t.Fatal(err)
				}
				got, rerr = s.read(f)
			}
			switch {
			case rerr == nil && got == s.want:
			case done:
				lost++
				t.Errorf("%s: returned nil, then a power cut left %s (%s)", s.name, describe(got, rerr, s), o.How)
			case s.before != nil && rerr == nil && got == s.old:
			case s.before == nil && errors.Is(rerr, fs.ErrNotExist):
			default:
				corrupt++
				t.Errorf("%s: power cut at operation %d left %s (%s)", s.name, at, describe(got, rerr, s), o.How)
			}
		}
		if done {
			return points, states, corrupt, lost, leftovers
		}
	}
}

func describe(got string, err error, s subject) string {
	switch {
	case err != nil:
		return "an unreadable file: " + err.Error()
	case got == s.old:
		return "the old content"
	default:
		return "other content"
	}
}
