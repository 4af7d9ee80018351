package e2e

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/e2eimage/e2eimage/cos"
	"github.com/e2eimage/e2eimage/internal/durable"
)

// StateVersion is the version of the state file format that this package
// writes; it reads version 1 files too (stateformat.go).
const StateVersion = 2

// maxStateFile bounds the state file read by LoadState: the state of a
// multipart upload of cos.MaxParts parts is about 1.5 MB.
const maxStateFile = 8 << 20

// ErrStateMismatch is returned (wrapped) when a state file belongs to
// another run: another template name, bucket, object or root key, a DEK
// other than the one the plan brings, or an image of another size.
var ErrStateMismatch = errors.New("e2e: the state file belongs to another run")

// ErrStateVersion is returned (wrapped) by LoadState for a state file of a
// format version this package does not read.
var ErrStateVersion = errors.New("e2e: unsupported state file version")

// State is what Run remembers between attempts, so that a run stopped by an
// error, a signal or a crash resumes where it stopped and never uploads,
// imports or orders twice. It is saved as JSON (LoadState, Save) in a
// format of its own, one record per step (MarshalJSON; ../docs/DESIGN.md
// documents it as a table of transitions): the JSON tags below are those
// of the version 1 format, which LoadState still reads.
//
// It holds no secret: the DEK is kept only wrapped by the root key (the
// WDEK, which only the key service can open), and API keys are never
// stored. The key-hash nonce and the VHD footer's unique id and timestamp
// are stored so that a resumed upload encrypts the image to the very same
// bytes; they are not secret (they are written into the image itself).
type State struct {
	Version int `json:"version"`

	// What the run is about; a plan must agree with these to resume.
	Name       string `json:"name"`
	RootKeyCRN string `json:"root_key_crn"`
	Bucket     string `json:"bucket"`
	Object     string `json:"object"`

	// The DEK, wrapped.
	WrappedDEK string `json:"wrapped_dek,omitempty"`
	KeyVersion string `json:"key_version,omitempty"`
	DEKSize    int    `json:"dek_size,omitempty"`
	DEKSource  string `json:"dek_source,omitempty"`

	// Encryption parameters that make the output reproducible.
	Nonce     string    `json:"nonce,omitempty"`     // hex, 32 bytes
	UniqueID  string    `json:"unique_id,omitempty"` // hex, 16 bytes
	Timestamp time.Time `json:"timestamp,omitzero"`  // VHD footer time, whole seconds

	// ImageSize is the encrypted image's size in bytes; DiskSize the
	// virtual disk's, when known.
	ImageSize int64 `json:"image_size,omitempty"`
	DiskSize  int64 `json:"disk_size,omitempty"`
	// OSCode is the OS reference code the image doctor found for the
	// image when the plan named none, for a resumed run that no longer
	// reads the image.
	OSCode string `json:"os_code,omitempty"`

	// Upload is the multipart upload in progress (kept on the server for
	// Resume); Uploaded the finished, verified object.
	Upload   *cos.UploadState `json:"upload,omitempty"`
	Uploaded *ObjectResult    `json:"uploaded,omitempty"`

	// IAM holds the ids of the IAM objects preparation found or made.
	IAM *IAMResult `json:"iam,omitempty"`
	// RunAPIKeyID is the id (never the value) of the import service ID's
	// API key that this run created and still owns: one nobody saved
	// (Plan.SaveAPIKey). The run deletes it once the import is done; a
	// resumed run, which no longer holds its value, deletes it before
	// making a replacement. Version 1 files have none.
	RunAPIKeyID string `json:"run_api_key_id,omitempty"`

	// A run from a template (Plan.SourceTemplate): the template, the
	// export's file name, whether copyToIcos was sent (set just before)
	// and is done, and the objects it wrote, each marked once deleted.
	SourceTemplateID int              `json:"source_template_id,omitempty"`
	ExportObject     string           `json:"export_object,omitempty"`
	ExportRequested  bool             `json:"export_requested,omitempty"`
	ExportDone       bool             `json:"export_done,omitempty"`
	Exported         []ExportedObject `json:"exported,omitempty"`

	// ImportRequested is set just before createFromIcos is sent, so that
	// a run that died without its answer looks for the template by name
	// instead of importing again.
	ImportRequested bool   `json:"import_requested,omitempty"`
	TemplateID      int    `json:"template_id,omitempty"`
	TemplateGUID    string `json:"template_guid,omitempty"`
	TemplateActive  bool   `json:"template_active,omitempty"`
	// FailedTemplates are templates of earlier attempts whose import
	// failed; they stay in the account (this package deletes nothing).
	FailedTemplates []int `json:"failed_templates,omitempty"`

	// OrderRequested, GuestID, ... are the server's, as for the template.
	OrderRequested bool   `json:"order_requested,omitempty"`
	GuestID        int    `json:"guest_id,omitempty"`
	GuestGUID      string `json:"guest_guid,omitempty"`
	Provisioned    bool   `json:"provisioned,omitempty"`

	// Started is when the first attempt began, Updated when the state
	// was last saved (both on the plan's clock). The audit window starts
	// at Started.
	Started time.Time `json:"started"`
	Updated time.Time `json:"updated"`
}

// LoadState reads a state file. A file that does not exist gives an error
// matching fs.ErrNotExist.
func LoadState(path string) (*State, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("e2e: reading state file: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("e2e: reading state file: %w", err)
	}
	if fi.Size() > maxStateFile {
		return nil, fmt.Errorf("e2e: state file %s is %d bytes, more than a state can be", path, fi.Size())
	}
	var st State
	dec := json.NewDecoder(f)
	if err := dec.Decode(&st); errors.Is(err, ErrStateVersion) {
		return nil, fmt.Errorf("e2e: state file %s: %w", path, err)
	} else if err != nil {
		return nil, fmt.Errorf("e2e: state file %s is not valid: %w", path, err)
	}
	return &st, nil
}

// Save writes the state to path atomically and durably: to a temporary file
// in the same directory (mode 0600), synced, renamed over path, and the
// directory synced, so that a crash or power cut at any point leaves either
// the old state or the whole new one, and the new one once Save returned
// (see internal/durable; test/powercut checks every crash point).
func (s *State) Save(path string) error {
	s.Version = StateVersion
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return fmt.Errorf("e2e: encoding state: %w", err)
	}
	b = append(b, '\n')
	if err := durable.Replace(path, b, stateTempPattern(path)); err != nil {
		return fmt.Errorf("e2e: saving state: %w", err)
	}
	return nil
}

// matches checks that the state was made for the same run as plan.
func (s *State) matches(p *Plan, rootKey string) error {
	check := func(field, have, want string) error {
		if have != want {
			return fmt.Errorf("%w: it is for %s %q, the plan says %q (use another state file, or remove it to start over)",
				ErrStateMismatch, field, have, want)
		}
		return nil
	}
	var source error
	if p.source != nil {
		source = check("source template", strconv.Itoa(s.SourceTemplateID), strconv.Itoa(p.source.ID))
	} else if s.SourceTemplateID != 0 {
		source = check("source template", strconv.Itoa(s.SourceTemplateID), "none")
	}
	return errors.Join(
		source,
		check("template name", s.Name, p.Name),
		check("root key", s.RootKeyCRN, rootKey),
		check("bucket", s.Bucket, p.Bucket),
		check("object", s.Object, p.Object),
	)
}

// encryptionParams returns the stored nonce, unique id and timestamp,
// making them first when the state has none: the nonce is zero (IBM's
// documented procedure) unless randomNonce.
func (s *State) encryptionParams(now time.Time, randomNonce bool) (nonce [32]byte, id [16]byte, ts time.Time, err error) {
	if s.Nonce == "" {
		if randomNonce {
			if _, err := rand.Read(nonce[:]); err != nil {
				return nonce, id, ts, fmt.Errorf("e2e: making a nonce: %w", err)
			}
		}
		if _, err := rand.Read(id[:]); err != nil {
			return nonce, id, ts, fmt.Errorf("e2e: making a unique id: %w", err)
		}
		s.Nonce, s.UniqueID = hex.EncodeToString(nonce[:]), hex.EncodeToString(id[:])
		s.Timestamp = now.UTC().Truncate(time.Second)
		return nonce, id, s.Timestamp, nil
	}
	n, err1 := hex.DecodeString(s.Nonce)
	u, err2 := hex.DecodeString(s.UniqueID)
	if err1 != nil || err2 != nil || len(n) != len(nonce) || len(u) != len(id) {
		return nonce, id, ts, fmt.Errorf("e2e: state file: malformed nonce or unique id")
	}
	copy(nonce[:], n)
	copy(id[:], u)
	return nonce, id, s.Timestamp, nil
}

// stateTempPattern is the os.CreateTemp pattern of Save's temporary files
// for the state file path: ".<name>.tmp" then the random part, which
// os.CreateTemp makes of decimal digits.
func stateTempPattern(path string) string { return "." + filepath.Base(path) + ".tmp*" }

// removeStaleStateTemps removes the temporary files that a Save killed
// before its rename (SIGKILL, power loss) left beside the state file path:
// regular files whose names match Save's pattern exactly, nothing else. It
// is best effort: a file that cannot be removed is only clutter, and the
// state file itself is never touched. It runs under the state's lock
// (fileStore.lock), so no other run is in the middle of a Save.
func removeStaleStateTemps(path string) { durable.RemoveTemps(path, stateTempPattern(path)) }

// loadOrNewState loads the state from store, or returns a new one when
// there is none (or no store). A file store first removes the temporary
// files an interrupted Save left (removeStaleStateTemps).
func loadOrNewState(store stateStore) (*State, bool, error) {
	if store == nil {
		return &State{Version: StateVersion}, false, nil
	}
	st, err := store.load()
	if errors.Is(err, fs.ErrNotExist) {
		return &State{Version: StateVersion}, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	return st, true, nil
}
