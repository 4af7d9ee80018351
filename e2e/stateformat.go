package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"time"

	"github.com/e2eimage/e2eimage/cos"
)

// The state file's format is not State's Go layout: State is what the
// program works with; the file is one record per step, each saying what
// was requested, the id it got and whether it is done (../docs/DESIGN.md,
// "The state file", has the table of transitions). Save writes version 2;
// LoadState reads versions 1 and 2 and refuses others naming the version.
//
// Version 1 was State marshalled as it stood (its JSON tags): stateV1
// keeps reading it.

// stateV1 is State without its methods: JSON of its tags, the version 1
// format.
type stateV1 State

// diskState is the version 2 file.
type diskState struct {
	Version int        `json:"version"`
	Run     diskRun    `json:"run"`
	Prepare *IAMResult `json:"prepare,omitempty"`
	// RunAPIKeyID: State.RunAPIKeyID.
	RunAPIKeyID string      `json:"run_api_key_id,omitempty"`
	Image       *diskImage  `json:"image,omitempty"`
	Key         *diskKey    `json:"key,omitempty"`
	Export      *diskExport `json:"export,omitempty"`
	Upload      *diskUpload `json:"upload,omitempty"`
	Import      *diskStep   `json:"import,omitempty"`
	Order       *diskStep   `json:"order,omitempty"`
}

// diskRun is what a plan must agree with to resume, and the clock.
type diskRun struct {
	Name       string    `json:"name"`
	RootKeyCRN string    `json:"root_key_crn"`
	Bucket     string    `json:"bucket"`
	Object     string    `json:"object"`
	Started    time.Time `json:"started"`
	Updated    time.Time `json:"updated"`
}

// diskImage is what preflight learnt of the image.
type diskImage struct {
	DiskSize int64  `json:"disk_size,omitempty"`
	OSCode   string `json:"os_code,omitempty"`
}

// diskKey is the key step's record: the wrapped DEK and the parameters
// that make the encrypted image reproducible.
type diskKey struct {
	WrappedDEK string    `json:"wrapped_dek,omitempty"`
	KeyVersion string    `json:"key_version,omitempty"`
	DEKSize    int       `json:"dek_size,omitempty"`
	DEKSource  string    `json:"dek_source,omitempty"`
	Nonce      string    `json:"nonce,omitempty"`
	UniqueID   string    `json:"unique_id,omitempty"`
	Timestamp  time.Time `json:"timestamp,omitzero"`
}

// diskExport is the export step's record (a run from a template).
type diskExport struct {
	SourceTemplateID int              `json:"source_template_id,omitempty"`
	Object           string           `json:"object,omitempty"`
	Requested        bool             `json:"requested,omitempty"`
	Done             bool             `json:"done,omitempty"`
	Objects          []ExportedObject `json:"objects,omitempty"`
}

// diskUpload is the upload step's record: the multipart upload in
// progress, then the finished object.
type diskUpload struct {
	ImageSize  int64            `json:"image_size,omitempty"`
	InProgress *cos.UploadState `json:"in_progress,omitempty"`
	Done       *ObjectResult    `json:"done,omitempty"`
}

// diskStep is the record of a step that asks the classic API for
// something and then waits for it: import (the template; done = Active)
// and order (the server; done = provisioned).
type diskStep struct {
	Requested bool   `json:"requested,omitempty"`
	ID        int    `json:"id,omitempty"`
	GUID      string `json:"guid,omitempty"`
	Done      bool   `json:"done,omitempty"`
	// Failed are the templates of earlier imports that failed (import
	// only).
	Failed []int `json:"failed,omitempty"`
}

// toDisk returns the version 2 file of s.
func (s *State) toDisk() diskState {
	d := diskState{Version: StateVersion, Run: diskRun{Name: s.Name, RootKeyCRN: s.RootKeyCRN, Bucket: s.Bucket,
		Object: s.Object, Started: s.Started, Updated: s.Updated}, Prepare: s.IAM, RunAPIKeyID: s.RunAPIKeyID}
	if s.DiskSize != 0 || s.OSCode != "" {
		d.Image = &diskImage{DiskSize: s.DiskSize, OSCode: s.OSCode}
	}
	if k := (diskKey{s.WrappedDEK, s.KeyVersion, s.DEKSize, s.DEKSource, s.Nonce, s.UniqueID, s.Timestamp}); k != (diskKey{}) {
		d.Key = &k
	}
	if s.SourceTemplateID != 0 || s.ExportObject != "" || s.ExportRequested || s.ExportDone || len(s.Exported) > 0 {
		d.Export = &diskExport{s.SourceTemplateID, s.ExportObject, s.ExportRequested, s.ExportDone, s.Exported}
	}
	if s.ImageSize != 0 || s.Upload != nil || s.Uploaded != nil {
		d.Upload = &diskUpload{s.ImageSize, s.Upload, s.Uploaded}
	}
	if s.ImportRequested || s.TemplateID != 0 || s.TemplateGUID != "" || s.TemplateActive || len(s.FailedTemplates) > 0 {
		d.Import = &diskStep{s.ImportRequested, s.TemplateID, s.TemplateGUID, s.TemplateActive, s.FailedTemplates}
	}
	if s.OrderRequested || s.GuestID != 0 || s.GuestGUID != "" || s.Provisioned {
		d.Order = &diskStep{Requested: s.OrderRequested, ID: s.GuestID, GUID: s.GuestGUID, Done: s.Provisioned}
	}
	return d
}

// state returns the State of a version 2 file.
func (d *diskState) state() *State {
	r := d.Run
	s := &State{Version: StateVersion, Name: r.Name, RootKeyCRN: r.RootKeyCRN, Bucket: r.Bucket, Object: r.Object,
		Started: r.Started, Updated: r.Updated, IAM: d.Prepare, RunAPIKeyID: d.RunAPIKeyID}
	if i := d.Image; i != nil {
		s.DiskSize, s.OSCode = i.DiskSize, i.OSCode
	}
	if k := d.Key; k != nil {
		s.WrappedDEK, s.KeyVersion, s.DEKSize, s.DEKSource = k.WrappedDEK, k.KeyVersion, k.DEKSize, k.DEKSource
		s.Nonce, s.UniqueID, s.Timestamp = k.Nonce, k.UniqueID, k.Timestamp
	}
	if e := d.Export; e != nil {
		s.SourceTemplateID, s.ExportObject, s.ExportRequested, s.ExportDone, s.Exported = e.SourceTemplateID, e.Object, e.Requested, e.Done, e.Objects
	}
	if u := d.Upload; u != nil {
		s.ImageSize, s.Upload, s.Uploaded = u.ImageSize, u.InProgress, u.Done
	}
	if i := d.Import; i != nil {
		s.ImportRequested, s.TemplateID, s.TemplateGUID, s.TemplateActive, s.FailedTemplates = i.Requested, i.ID, i.GUID, i.Done, i.Failed
	}
	if o := d.Order; o != nil {
		s.OrderRequested, s.GuestID, s.GuestGUID, s.Provisioned = o.Requested, o.ID, o.GUID, o.Done
	}
	return s
}

// MarshalJSON writes the state file's format (version 2), not State's
// layout.
func (s State) MarshalJSON() ([]byte, error) { return json.Marshal(s.toDisk()) }

// UnmarshalJSON reads a state file of version 1 or 2; another version is
// an error matching ErrStateVersion that names it.
func (s *State) UnmarshalJSON(b []byte) error {
	var v struct {
		Version *int `json:"version"`
	}
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	switch {
	case v.Version == nil:
		return fmt.Errorf("%w: the file has no version", ErrStateVersion)
	case *v.Version == 1:
		var old stateV1 // read as version 1 programs did: unknown fields ignored
		if err := json.Unmarshal(b, &old); err != nil {
			return err
		}
		*s = State(old)
		s.Version = StateVersion
		return nil
	case *v.Version == StateVersion:
		var d diskState
		if err := strictDecode(b, &d); err != nil {
			return err
		}
		*s = *d.state()
		return nil
	}
	return fmt.Errorf("%w: version %d (this program reads versions 1 and %d)", ErrStateVersion, *v.Version, StateVersion)
}

// strictDecode decodes b into v, refusing fields v does not have: a file
// of a newer program's making is refused, not half read.
func strictDecode(b []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	return dec.Decode(v)
}
