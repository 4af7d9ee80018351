package e2e

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/e2eimage/e2eimage/cos"
)

// TestStateV1FilesStillLoad reads the version 1 state files a run of the
// flow wrote at the end of each step (testdata/state-v1, captured before
// the format changed): each loads to the same values the version 1 reader
// gave, saves as version 2, and loads back unchanged.
func TestStateV1FilesStillLoad(t *testing.T) {
	files, err := filepath.Glob("testdata/state-v1/*.json")
	if err != nil || len(files) < 8 {
		t.Fatalf("state-v1 files: %v %v", files, err)
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			b, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			var old stateV1 // the version 1 reader: State's JSON tags
			if err := json.Unmarshal(b, &old); err != nil || old.Version != 1 {
				t.Fatalf("not a version 1 file: %v %d", err, old.Version)
			}
			st, err := LoadState(f)
			if err != nil {
				t.Fatal(err)
			}
			want := State(old)
			want.Version = StateVersion
			if !reflect.DeepEqual(*st, want) {
				t.Fatalf("loaded\n%+v\nwant\n%+v", *st, want)
			}
			out := filepath.Join(t.TempDir(), "state.json")
			if err := st.Save(out); err != nil {
				t.Fatal(err)
			}
			saved, _ := os.ReadFile(out)
			if !strings.Contains(string(saved), `"version": 2`) || strings.Contains(string(saved), `"template_active"`) {
				t.Fatalf("not saved in the version 2 format:\n%s", saved)
			}
			back, err := LoadState(out)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(back, st) {
				t.Fatalf("version 2 round trip changed the state:\n%+v\n%+v", back, st)
			}
		})
	}
}

// TestStateFormatKeepsEveryField: a State with every field set survives
// the version 2 format, so that a field added to State but not to the
// format fails here, not in a resumed run.
func TestStateFormatKeepsEveryField(t *testing.T) {
	st := full()
	b, err := json.Marshal(st)
	if err != nil {
		t.Fatal(err)
	}
	var back State
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(back, st) {
		t.Fatalf("round trip:\n%+v\nwant\n%+v\nfile:\n%s", back, st, b)
	}
	v := reflect.ValueOf(st)
	for i := range v.NumField() {
		if v.Field(i).IsZero() {
			t.Errorf("full() leaves %s zero: set it so that the round trip checks it", v.Type().Field(i).Name)
		}
	}
}

// full is a State with every field set.
func full() State {
	t0 := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	return State{Version: StateVersion, Name: "n", RootKeyCRN: "crn", Bucket: "b", Object: "o.vhd",
		WrappedDEK: "w", KeyVersion: "kv", DEKSize: 32, DEKSource: DEKKeyService, Nonce: "00", UniqueID: "11", Timestamp: t0,
		ImageSize: 9, DiskSize: 8, OSCode: "UBUNTU_22_64",
		Upload:   &cos.UploadState{Bucket: "b", Key: "o.vhd", UploadID: "u", PartSize: 5 << 20, Size: -1, Completed: []cos.CompletedPart{{Number: 1, ETag: "e", Size: 5 << 20}}},
		Uploaded: &ObjectResult{Bucket: "b", Key: "o.vhd", Size: 9},
		IAM:      &IAMResult{ServiceID: "sid", APIKeyID: "kid"}, RunAPIKeyID: "ApiKey-run",
		SourceTemplateID: 5, ExportObject: "x.vhd", ExportRequested: true, ExportDone: true,
		Exported:        []ExportedObject{{Key: "x-0.vhd", Size: 7}},
		ImportRequested: true, TemplateID: 6, TemplateGUID: "tg", TemplateActive: true, FailedTemplates: []int{3},
		OrderRequested: true, GuestID: 7, GuestGUID: "gg", Provisioned: true,
		Started: t0, Updated: t0.Add(time.Hour)}
}

// TestStateOtherVersionsRefused: a file of another version is refused
// with an error naming its version.
func TestStateOtherVersionsRefused(t *testing.T) {
	dir := t.TempDir()
	for _, c := range []struct{ content, want string }{
		{`{"version":3,"run":{}}`, "version 3"},
		{`{"version":0}`, "version 0"},
		{`{"name":"x"}`, "no version"},
	} {
		p := filepath.Join(dir, "s.json")
		if err := os.WriteFile(p, []byte(c.content), 0o600); err != nil {
			t.Fatal(err)
		}
		_, err := LoadState(p)
		if !errors.Is(err, ErrStateVersion) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want ErrStateVersion naming %q", c.content, err, c.want)
		}
	}
}
