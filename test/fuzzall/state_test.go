package fuzzall

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/e2eimage/e2eimage/cos"
	"github.com/e2eimage/e2eimage/e2e"
)

// FuzzLoadState: any state file content loads or gives an error, never a
// panic; what loads saves (mode 0600) and loads again to the same state.
func FuzzLoadState(f *testing.F) {
	st := e2e.State{
		Version: e2e.StateVersion, Name: "img", RootKeyCRN: "crn:v1:bluemix:public:kms:us-south:a/1:2:key:3",
		Bucket: "b", Object: "img.vhd-0.vhd", WrappedDEK: "d2Rlaw==", DEKSize: 64, DEKSource: e2e.DEKLocal,
		Nonce: "00", UniqueID: "11", Timestamp: time.Unix(1e9, 0).UTC(), ImageSize: 1 << 20,
		Upload:     &cos.UploadState{Bucket: "b", Key: "k", UploadID: "u", PartSize: 5 << 20, Size: -1, Completed: []cos.CompletedPart{{Number: 1, ETag: "e", Size: 5 << 20}}},
		TemplateID: 7, ImportRequested: true, FailedTemplates: []int{1, 2}, Started: time.Unix(1e9, 0).UTC(),
	}
	b, _ := json.Marshal(st)
	f.Add(b)
	f.Add([]byte(`{"version":1}`))
	f.Add([]byte(`{"version":2}`))
	f.Add([]byte(`{"version":1,"upload":{"completed":[null]}}`))
	f.Add([]byte(`{"version":1}{"version":1}`))
	f.Add([]byte(``))
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, content []byte) {
		in := filepath.Join(dir, "in.json")
		if err := os.WriteFile(in, content, 0o600); err != nil {
			t.Fatal(err)
		}
		st, err := e2e.LoadState(in)
		if err != nil {
			if st != nil {
				t.Fatalf("LoadState returned a state with error %v", err)
			}
			return
		}
		if st.Version != e2e.StateVersion {
			t.Fatalf("loaded a state of version %d", st.Version)
		}
		out := filepath.Join(dir, "out.json")
		if err := st.Save(out); err != nil {
			t.Fatalf("Save of a loaded state: %v", err)
		}
		fi, err := os.Stat(out)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != 0o600 {
			t.Fatalf("saved with mode %v", fi.Mode().Perm())
		}
		back, err := e2e.LoadState(out)
		if err != nil {
			t.Fatalf("a saved state does not load: %v", err)
		}
		if !reflect.DeepEqual(normal(t, st), normal(t, back)) {
			t.Fatalf("save and load changed the state")
		}
		if _, err := e2e.LoadState(filepath.Join(dir, "missing.json")); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("a missing state file: %v", err)
		}
	})
}

// normal is a state as generic JSON, so that time zones and nil/empty
// slices that marshal alike compare equal.
func normal(t *testing.T, s *e2e.State) any {
	b, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatal(err)
	}
	return v
}
