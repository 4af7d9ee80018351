package e2e

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"

	"github.com/e2eimage/e2eimage/crn"

	"github.com/e2eimage/e2eimage/vhdcrypt"

	"github.com/e2eimage/e2eimage/classic"
	"github.com/e2eimage/e2eimage/iam"
	"github.com/e2eimage/e2eimage/kms"
	"github.com/e2eimage/e2eimage/secret"
)

// ObjectSuffix is how the name of an image object in COS ends by default:
// IBM's E2E documentation names import objects <name>.vhd-0.vhd (../docs/CLOUD.md
// section 7.2), the name copyToIcos gives the first block device of an
// export of <name>.vhd (section 7.3). An encrypted import needs a name
// ending in .vhd.
const ObjectSuffix = ".vhd-0.vhd"

// DefaultImportKeyWait is how long Run waits, by default, for a new import
// API key to become usable (Plan.ImportKeyWait). IBM documents that IAM
// changes take effect after a delay but, as far as we found, no bound; ten
// minutes is our choice.
const DefaultImportKeyWait = 10 * time.Minute

// ErrPlan is matched (errors.Is) by every error about a Plan that is
// incomplete or inconsistent; Run makes no request then.
var ErrPlan = errors.New("e2e: invalid plan")

// ErrImportKeyRefused is matched by the errors of Plan.ProveImportKey when
// IAM, the key service or COS refused the import key (as opposed to being
// unreachable); Run retries while it does, up to Plan.ImportKeyWait.
var ErrImportKeyRefused = errors.New("e2e: the import API key was refused")

// ErrNoImage is returned when a run has to encrypt and upload the image
// and Plan.Image is nil (an image is not needed once the state file
// records the upload).
var ErrNoImage = errors.New("e2e: the plan has no image to upload")

// Plan is one run of the whole End to End flow, from an unencrypted image
// to an encrypted image template and, optionally, a server started from it.
// The zero value of every optional field is a sensible default; see each
// field.
type Plan struct {
	// Image is the unencrypted disk image: raw, fixed VHD, dynamic VHD or
	// qcow2 (see vhdcrypt.EncryptImage). An io.ReaderAt with a Size method
	// or an *os.File is read with random access (a raw image then gets
	// sparse output), and preflight runs the image doctor (package doctor)
	// on it: a requirement it finds failing stops the run before anything
	// is uploaded (*ImageError). Anything else is read once as a stream,
	// which the doctor cannot examine (and qcow2 cannot be). It may be nil
	// when the state file records that the image was uploaded.
	Image io.Reader
	// ImageSize is the virtual size of a raw image read from a stream
	// (WithSize); 0 otherwise.
	ImageSize int64

	// SourceTemplate, instead of Image, names an existing classic image
	// template to encrypt, by id (digits) or by name: Run checks it
	// (unencrypted, a boot disk within classic.MaxImportDiskSize, an OS
	// code), exports it to Bucket (copyToIcos), encrypts the exported boot
	// disk object as it streams from COS into the encrypted object's
	// multipart upload (no byte of the image on local disk), imports,
	// orders and audits as with an image, and deletes the plaintext export
	// (see KeepExport). Name defaults to the template's name +
	// SourceNameSuffix, Note and OSCode to the template's.
	SourceTemplate string
	// ExportAPIKey is the API key the classic backplane writes the export
	// with (copyToIcos's ibmApiKey): it needs Writer access to Bucket.
	// Default: the import's API key (ImportAPIKey).
	ExportAPIKey *secret.String
	// ExportObject is the export's file name in Bucket; the export writes
	// <stem>-<n>.vhd for block device n (classic.ExportRequest). Default:
	// Name + ExportSuffix.
	ExportObject string
	// KeepExport keeps the plaintext objects the export wrote. By default
	// the run deletes them: the other disks' objects as soon as the export
	// is done (E2E imports a boot disk only), the boot disk's once the
	// encrypted template is Active. A run that stops before that leaves
	// them recorded in the state file; the next run, or Cleanup, deletes
	// them.
	KeepExport bool
	// Doctor, when set, examines the source image before it is encrypted:
	// it gets the exported boot disk as an io.ReaderAt of size bytes (reads
	// of its first 4 MiB are cached, so the encryption does not fetch them
	// again) and a non-nil error stops the run. Nil means the image
	// doctor (package doctor, with OSCode) as the preflight runs it on a
	// local image: a failing requirement stops the run before any upload.
	Doctor func(ctx context.Context, image io.ReaderAt, size int64) error

	// source is the resolved SourceTemplate (resolveSource).
	source *classic.TemplateContent
	// ProveImportKey, when set, is called before createFromIcos with the
	// import's API key, the bucket and the object, and must return nil
	// when that key can already do what the import does (ibmcloud.Clients.ProveImportKey
	// is one; ibmcloud.Connect's clients are what most callers pass). IAM is
	// eventually consistent: a service ID, key or policy made moments ago
	// (Prepare) can be refused for a while, so Run retries while the error
	// matches ErrImportKeyRefused, up to ImportKeyWait, and imports only
	// then. It also imports again, without uploading again, when an import
	// fails for lack of access within that time.
	ProveImportKey func(ctx context.Context, apiKey *secret.String, bucket, object string) error
	// ImportKeyWait bounds the waiting above. Zero means
	// DefaultImportKeyWait.
	ImportKeyWait time.Duration

	// RandomNonce writes a random key-hash nonce into the encrypted image
	// instead of the zero nonce of IBM's documented procedure; see
	// vhdcrypt.WithRandomNonce for the trade and its risk. Default false.
	RandomNonce bool

	// Workers is how many goroutines encrypt (WithWorkers); 0 means
	// GOMAXPROCS.
	Workers int

	// Name is the image template's name. Required.
	Name string
	// Note is stored with the template.
	Note string
	// OSCode is the template's operating system reference code, e.g.
	// UBUNTU_22_64. Empty: the code of the system the image doctor finds
	// in the image (doctor.Report.OSCode); when it finds none, or the image
	// is a stream it cannot examine, the run needs OSCode (ErrNoOSCode,
	// ErrPlan). Preflight refuses a code that contradicts the image's
	// system (doctor.ErrOSCodeMismatch) and checks it against the systems
	// IBM documents for imports (classic.SupportedOperatingSystems) and the
	// codes the classic API accepts.
	OSCode string
	// AnyOSCode accepts any code the classic API accepts, not only the
	// documented systems (classic.ImportRequest.AnyOSCode), and an image
	// whose system the image doctor finds is not on IBM's list.
	AnyOSCode bool
	// Object is the name of the image object in the bucket; it must end in
	// .vhd. Default: Name + ObjectSuffix.
	Object string

	// KeyService wraps the DEK with the root key (Key Protect or HPCS).
	// Required.
	KeyService kms.KeyService
	// RootKeyCRN is the root key's CRN, which the import needs. Default:
	// the CRN of KeyService when it is a *kms.Client.
	RootKeyCRN string
	// DEK is the data encryption key to use (bring your own); Run wraps
	// it and never zeroes it. nil: Run makes one of DEKSize bytes.
	DEK *secret.DEK
	// DEKSize is the size of the DEK Run makes. The default, AES128XTS
	// (32 bytes), is generated and wrapped by the key service in one call
	// (kms.NewDEK): IBM's E2E page ("Encrypting images for End to End
	// encryption") says to wrap "the base64-encoded 32-byte standard data
	// encryption key (DEK)" and to let "kp wrap" without -p generate it.
	// AES256XTS (64 bytes, made here from crypto/rand and wrapped) follows
	// the vhd-util page ("Encrypting an image with vhd-util"), whose
	// example key is 64 bytes; the two pages disagree, and the E2E page is
	// the procedure's own.
	DEKSize int

	// IAM manages the account's IAM objects. Optional: without it, Run
	// neither prepares nor checks the authorization and the service ID,
	// and ImportAPIKey is required.
	IAM *iam.Client
	// Prepare makes Run create the missing IAM objects (iam.Client.Setup)
	// before the preflight checks: the Cloud Block Storage -> key service
	// authorization and, with ServiceID.Name, the import service ID, its
	// API key and its access policies. Without it, they are only checked.
	Prepare bool
	// ServiceID is the service ID whose API key the import uses. An empty
	// Name uses ImportAPIKey instead.
	ServiceID iam.ServiceIDSpec
	// COSInstanceID is the GUID (or CRN) of the COS instance that holds the
	// bucket; required with ServiceID.Name.
	COSInstanceID string
	// COSKeyAuthorization also prepares the cloud-object-storage -> key
	// service authorization, which buckets encrypted with the key need.
	COSKeyAuthorization bool
	// ImportAPIKey is the IBM Cloud API key the classic backplane reads
	// the object and unwraps the DEK with (ibmApiKey). With ServiceID.Name
	// it is taken as that service ID's known key (ServiceIDSpec.KnownAPIKey)
	// and no new key is made when it still works.
	ImportAPIKey *secret.String
	// SaveAPIKey is called when preparation creates an API key for the
	// service ID, the only time IAM shows its value: store it (mode 0600,
	// or a secret manager) and pass it back as ImportAPIKey next time.
	// An error stops the run, and the key is deleted first (its value
	// would be lost). Without SaveAPIKey the key is the run's: its id (not
	// its value) is in the state file, and the run deletes it once the
	// import is done (a resumed attempt that no longer has its value
	// deletes it and makes another), so keys never pile up.
	SaveAPIKey func(ctx context.Context, serviceID iam.ServiceID, apiKeyID string, apiKey *secret.String) error

	// COS uploads the encrypted image. Required; its region is the
	// import's (cos://<region>/<bucket>/<object>).
	COS ObjectStore
	// Bucket is the Regional bucket, in the root key's region. Required.
	Bucket string
	// PartSize and Concurrency tune the multipart upload (cos.WithPartSize,
	// cos.WithConcurrency); 0 keeps the cos defaults.
	PartSize    int64
	Concurrency int

	// Classic imports the image and orders the server. Required.
	Classic ImageService
	// Server, when set, orders a server from the new template and waits
	// until it is provisioned. Its Template field is filled by Run.
	Server *classic.ServerSpec

	// Audit, when set, collects the run's audit events at the end.
	Audit AuditSource
	// AuditWait is how long the audit step keeps reading while expected
	// events (the wrap, the template's creation, the provisioning) are
	// missing; Activity Tracker shows events minutes after they happen.
	// Zero: read once, and report the expected events that are missing.
	AuditWait time.Duration

	// StatePath is the state file that makes the run resumable (see
	// State). "" runs without one: nothing is resumed and an interrupted
	// multipart upload is aborted. With one, an upload that fails or is
	// cancelled is kept on the server for the next attempt; abandon it
	// with cos.Client.Abort (its id is in the state file).
	StatePath string
	// Clock gives the time of the audit window and the state's
	// timestamps; default time.Now. A simulator with a fast clock passes
	// its own.
	Clock func() time.Time
	// OnStep is called as each step starts (StepRunning), reports progress
	// (StepRunning with a new Detail) and ends. Calls come from Run's
	// goroutine, one at a time.
	OnStep func(Step)
	// OnProgress receives byte progress: PhaseScan and PhaseEncrypt from
	// the encryptor, PhaseUpload from the upload. Calls are serialised.
	OnProgress func(vhdcrypt.Progress)
	// Logger receives debug messages; default: discard. Nothing secret is
	// logged.
	Logger *slog.Logger
}

// PhaseUpload is the upload of the encrypted image: Done counts bytes the
// object store acknowledged, Total is the encrypted image's size.
const PhaseUpload vhdcrypt.Phase = "upload"

// planError is an ErrPlan error.
func planError(format string, a ...any) error {
	return fmt.Errorf("%w: %s", ErrPlan, fmt.Sprintf(format, a...))
}

// withDefaults returns a copy of p with defaults applied, the root key CRN
// resolved, and checks what can be checked without a request (no I/O: the
// image is not opened here).
func (p Plan) withDefaults(mode runMode) (Plan, crn.Key, error) {
	p.applyDefaults()
	key, err := crn.ParseKey(p.RootKeyCRN)
	errs := p.checkInputs(mode)
	if err != nil {
		errs = append(errs, planError("RootKeyCRN: %v", err))
	}
	errs = append(errs, p.checkClients(mode)...)
	errs = append(errs, p.checkSource(mode)...)
	return p, key, errors.Join(errs...)
}

// applyDefaults fills the fields whose zero value means a default that
// needs neither the image nor the cloud.
func (p *Plan) applyDefaults() {
	if p.Object == "" && p.Name != "" {
		p.Object = p.Name + ObjectSuffix
	}
	if p.SourceTemplate != "" && p.ExportObject == "" && p.Name != "" {
		p.ExportObject = p.Name + ExportSuffix
	}
	if p.DEKSize == 0 {
		p.DEKSize = vhdcrypt.AES128XTS
	}
	if p.Clock == nil {
		p.Clock = time.Now
	}
	if p.ImportKeyWait <= 0 {
		p.ImportKeyWait = DefaultImportKeyWait
	}
	if p.Logger == nil {
		p.Logger = slog.New(slog.DiscardHandler)
	}
	if p.RootKeyCRN == "" {
		if c, ok := p.KeyService.(interface{ CRN() crn.Key }); ok {
			p.RootKeyCRN = c.CRN().String()
		}
	}
}

// checkInputs checks the names, sizes and the DEK.
func (p *Plan) checkInputs(mode runMode) []error {
	run := mode == modeRun
	var errs []error
	switch {
	case p.Name == "" && run:
		errs = append(errs, planError("Name (the template name) is required"))
	case strings.TrimSpace(p.Name) != p.Name:
		errs = append(errs, planError("Name %q has surrounding white space", p.Name))
	}
	if p.OSCode == "" && run && p.Image != nil && !randomAccess(p.Image) {
		errs = append(errs, planError("OSCode (the operating system reference code, e.g. UBUNTU_22_64) is required for an image read as a stream: the image doctor, which finds it otherwise, reads files only"))
	}
	if p.Object != "" && !strings.HasSuffix(p.Object, ".vhd") {
		errs = append(errs, planError("object name %q must end in .vhd (IBM's convention: <name>%s)", p.Object, ObjectSuffix))
	}
	if p.DEK != nil {
		if n := p.DEK.Len(); n != vhdcrypt.AES128XTS && n != vhdcrypt.AES256XTS {
			errs = append(errs, planError("DEK: %v (got %d bytes)", vhdcrypt.ErrKeySize, n))
		}
	} else if p.DEKSize != vhdcrypt.AES128XTS && p.DEKSize != vhdcrypt.AES256XTS {
		errs = append(errs, planError("DEKSize %d: must be %d or %d", p.DEKSize, vhdcrypt.AES128XTS, vhdcrypt.AES256XTS))
	}
	if p.Bucket == "" {
		errs = append(errs, planError("Bucket is required"))
	}
	if p.Server != nil && (p.Server.Hostname == "" || p.Server.Domain == "") {
		errs = append(errs, planError("Server needs a Hostname and a Domain (a retried order finds the server by them)"))
	}
	if p.PartSize < 0 || p.Concurrency < 0 || p.ImageSize < 0 || p.AuditWait < 0 {
		errs = append(errs, planError("PartSize, Concurrency, ImageSize and AuditWait cannot be negative"))
	}
	return errs
}

// randomAccess reports whether the image can be read at any offset (a
// file, an io.ReaderAt with a size); it does not read the image.
func randomAccess(img io.Reader) bool {
	_, _, ok, err := vhdcrypt.RandomAccess(img)
	return err != nil || ok
}

// checkClients checks that the clients the plan needs are there.
func (p *Plan) checkClients(mode runMode) []error {
	var errs []error
	if p.KeyService == nil {
		errs = append(errs, planError("KeyService is required"))
	}
	if p.COS == nil {
		errs = append(errs, planError("COS (the object storage client) is required"))
	}
	if p.Classic == nil && mode == modeRun {
		errs = append(errs, planError("Classic (the classic infrastructure client) is required"))
	}
	withServiceID := p.ServiceID.Name != ""
	if withServiceID && p.IAM == nil {
		errs = append(errs, planError("ServiceID needs IAM (the IAM client) to find or make it"))
	}
	if withServiceID && p.COSInstanceID == "" {
		errs = append(errs, planError("ServiceID needs COSInstanceID, the COS instance its access policy names"))
	}
	if (p.Prepare || p.COSKeyAuthorization) && p.IAM == nil {
		errs = append(errs, planError("Prepare needs IAM (the IAM client)"))
	}
	return errs
}

// iamPlan is the IAM side of the plan.
func (p *Plan) iamPlan(key crn.Key) iam.Plan {
	return iam.Plan{
		Key: key,
		ServiceID: iam.ServiceIDSpec{
			Name:        p.ServiceID.Name,
			Description: p.ServiceID.Description,
			APIKeyName:  p.ServiceID.APIKeyName,
			KnownAPIKey: firstSecret(p.ServiceID.KnownAPIKey, p.ImportAPIKey),
		},
		COSInstanceID:       instanceGUID(p.COSInstanceID),
		Bucket:              p.Bucket,
		COSKeyAuthorization: p.COSKeyAuthorization,
	}
}

func firstSecret(a, b *secret.String) *secret.String {
	if !a.Empty() {
		return a
	}
	return b
}

// instanceGUID returns the GUID of a service instance given as a GUID or
// as a CRN (crn:v1:bluemix:public:cloud-object-storage:global:a/<account>:<guid>::).
func instanceGUID(s string) string {
	if c, err := crn.Parse(s); err == nil && c.ServiceInstance != "" {
		return c.ServiceInstance
	}
	return s
}
