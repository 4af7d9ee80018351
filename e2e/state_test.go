package e2e

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/e2eimage/e2eimage/cos"
)

func TestStateSaveLoad(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "run.json")
	st := &State{
		Name: "img", RootKeyCRN: "crn:x", Bucket: "b", Object: "img.vhd-0.vhd",
		WrappedDEK: "d3JhcHBlZA==", KeyVersion: "v1", DEKSize: 64, DEKSource: DEKLocal,
		Upload:  &cos.UploadState{Bucket: "b", Key: "img.vhd-0.vhd", UploadID: "u1", PartSize: 5 << 20, Size: 1 << 24, Completed: []cos.CompletedPart{{Number: 1, ETag: "e", Size: 5 << 20}}},
		Started: time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC),
	}
	now := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	nonce, id, ts, err := st.encryptionParams(now, true)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Save(path); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v", fi.Mode())
	}
	got, err := LoadState(path)
	if err != nil {
		t.Fatal(err)
	}
	n2, id2, ts2, err := got.encryptionParams(now.Add(time.Hour), true)
	if err != nil {
		t.Fatal(err)
	}
	if n2 != nonce || id2 != id || !ts2.Equal(ts) || !ts.Equal(now) {
		t.Fatal("encryption parameters changed across a save")
	}
	if got.Upload.UploadID != "u1" || len(got.Upload.Completed) != 1 || got.WrappedDEK != st.WrappedDEK {
		t.Fatalf("round trip lost data: %+v", got)
	}
	// No temporary file is left beside the state.
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Fatalf("files left: %v", entries)
	}
	// Saving again replaces it.
	got.TemplateID = 7
	if err := got.Save(path); err != nil {
		t.Fatal(err)
	}
	again, err := LoadState(path)
	if err != nil || again.TemplateID != 7 {
		t.Fatalf("%v %+v", err, again)
	}
}

func TestStateLoadErrors(t *testing.T) {
	dir := t.TempDir()
	if _, err := LoadState(filepath.Join(dir, "none.json")); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("missing file: %v", err)
	}
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	if _, err := LoadState(write("v9.json", `{"version":9}`)); !errors.Is(err, ErrStateVersion) {
		t.Fatalf("version: %v", err)
	}
	if _, err := LoadState(write("bad.json", `{"version":`)); err == nil {
		t.Fatal("truncated JSON accepted")
	}
	st, err := LoadState(write("badnonce.json", `{"version":1,"nonce":"zz","unique_id":"00"}`))
	if err != nil {
		t.Fatal(err)
	}
	if _, _, _, err := st.encryptionParams(time.Now(), true); err == nil {
		t.Fatal("malformed nonce accepted")
	}
}

func TestStateMatches(t *testing.T) {
	st := &State{Name: "a", RootKeyCRN: "k", Bucket: "b", Object: "a.vhd"}
	if err := st.matches(&Plan{Name: "a", Bucket: "b", Object: "a.vhd"}, "k"); err != nil {
		t.Fatal(err)
	}
	for _, p := range []Plan{
		{Name: "x", Bucket: "b", Object: "a.vhd"},
		{Name: "a", Bucket: "c", Object: "a.vhd"},
		{Name: "a", Bucket: "b", Object: "x.vhd"},
	} {
		if err := st.matches(&p, "k"); !errors.Is(err, ErrStateMismatch) {
			t.Fatalf("%+v: %v", p, err)
		}
	}
	if err := st.matches(&Plan{Name: "a", Bucket: "b", Object: "a.vhd"}, "other"); !errors.Is(err, ErrStateMismatch) {
		t.Fatal("another root key accepted")
	}
}

func TestStateFieldsAreTheReviewedOnes(t *testing.T) {
	// Every field of the state file, reviewed for secrets: none may hold a
	// DEK or an API key. Adding a field is a deliberate change of this list.
	reviewed := map[string]bool{
		"version": true, "name": true, "root_key_crn": true, "bucket": true, "object": true,
		"wrapped_dek": true, "key_version": true, "dek_size": true, "dek_source": true,
		"nonce": true, "unique_id": true, "timestamp": true, "image_size": true, "disk_size": true,
		"upload": true, "uploaded": true, "iam": true, "import_requested": true, "template_id": true,
		"template_guid": true, "template_active": true, "failed_templates": true, "order_requested": true,
		"guest_id": true, "guest_guid": true, "provisioned": true, "started": true, "updated": true, "os_code": true,
		// A run from a template: an id, a file name, two flags, and object
		// keys, sizes and ETags (the export's API key is not stored).
		"source_template_id": true, "export_object": true, "export_requested": true, "export_done": true, "exported": true,
		// The id of the API key the run owns; never its value.
		"run_api_key_id": true,
	}
	typ := reflect.TypeOf(State{})
	for i := range typ.NumField() {
		name, _, _ := strings.Cut(typ.Field(i).Tag.Get("json"), ",")
		if !reviewed[name] {
			t.Errorf("state field %s (%q) was not reviewed for secrets", typ.Field(i).Name, name)
		}
	}
	if typ.NumField() != len(reviewed) {
		t.Errorf("%d fields, %d reviewed", typ.NumField(), len(reviewed))
	}
}

// TestStaleStateTempsRemoved: a Save killed before its rename leaves its
// temporary file; the next run removes exactly those, nothing else.
func TestStaleStateTempsRemoved(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "run.json")
	if err := (&State{Name: "img"}).Save(path); err != nil {
		t.Fatal(err)
	}
	// A real leftover, made the way Save makes its temporary files.
	f, err := os.CreateTemp(dir, stateTempPattern(path))
	if err != nil {
		t.Fatal(err)
	}
	leftover := filepath.Base(f.Name())
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	stale := []string{leftover, ".run.json.tmp1", ".run.json.tmp4294967295"}
	keep := []string{
		"run.json", ".run.json.tmp", ".run.json.tmp12a", ".run.json.tmpx", "run.json.tmp1",
		".run.json.tmp1.bak", ".other.json.tmp1", ".run.json.partial-1", ".run.jsonXtmp1", "x.run.json.tmp1",
	}
	for _, n := range append(stale[1:], keep[1:]...) {
		if err := os.WriteFile(filepath.Join(dir, n), []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Mkdir(filepath.Join(dir, ".run.json.tmp7"), 0o700); err != nil {
		t.Fatal(err)
	}
	keep = append(keep, ".run.json.tmp7") // a directory is not Save's

	st, found, err := loadOrNewState(fileStore{path})
	if err != nil || !found || st.Name != "img" {
		t.Fatalf("loadOrNewState: %+v %v %v", st, found, err)
	}
	for _, n := range stale {
		if _, err := os.Lstat(filepath.Join(dir, n)); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("stale %s was not removed: %v", n, err)
		}
	}
	for _, n := range keep {
		if _, err := os.Lstat(filepath.Join(dir, n)); err != nil {
			t.Errorf("%s was removed: %v", n, err)
		}
	}

	// No state file yet: leftovers go all the same.
	other := filepath.Join(dir, "new.json")
	if err := os.WriteFile(filepath.Join(dir, ".new.json.tmp42"), []byte("{"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, found, err := loadOrNewState(fileStore{other}); err != nil || found {
		t.Fatalf("loadOrNewState(new): %v %v", found, err)
	}
	if _, err := os.Lstat(filepath.Join(dir, ".new.json.tmp42")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("the leftover of a state never saved was not removed: %v", err)
	}
}
