package classic

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"strings"
	"time"

	"github.com/softlayer/softlayer-go/datatypes"
	"github.com/softlayer/softlayer-go/services"
	"github.com/softlayer/softlayer-go/session"

	"github.com/e2eimage/e2eimage/secret"
)

// BucketLocator returns the location constraint of a COS bucket (what
// GetBucketLocation answers, e.g. "us-south-standard"). The cos package
// provides one; classic does not import it.
type BucketLocator func(ctx context.Context, region, bucket string) (locationConstraint string, err error)

// ImportRequest describes an image import from Cloud Object Storage
// (SoftLayer_Virtual_Guest_Block_Device_Template_Group::createFromIcos).
type ImportRequest struct {
	// Name of the image template. Required.
	Name string
	// Note is free text stored with the template.
	Note string
	// URI is cos://<region>/<bucket>/<object>. The region must be an
	// import location (IsImportRegion); an encrypted image's object name
	// must end in .vhd (IBM's convention is <name>.vhd-0.vhd).
	URI string
	// APIKey is the IBM Cloud API key (of a service ID) that the backplane
	// uses to read the object and, for an encrypted image, to unwrap the
	// DEK. Required. It is sent in the request body and never appears in
	// errors.
	APIKey *secret.String
	// OSCode is the operating system reference code, e.g. UBUNTU_22_64;
	// it must be one of OSReferenceCodes.
	OSCode string
	// DiskSize is the virtual size of the disk inside the VHD in bytes
	// (its footer's current size). It must not exceed MaxImportDiskSize.
	// 0 skips the check.
	DiskSize int64
	// BucketLocation is the bucket's location constraint, e.g.
	// "us-south-standard"; it must be Regional and in the URI's region.
	BucketLocation string
	// BucketLocator looks the location up when BucketLocation is empty.
	BucketLocator BucketLocator
	// SkipBucketCheck allows neither BucketLocation nor BucketLocator to
	// be set; the backplane then finds a non-Regional bucket itself, late.
	SkipBucketCheck bool
	// Encryption makes this an E2E encrypted import. nil: unencrypted.
	Encryption *Encryption
	// CloudInit marks the image cloud-init enabled. Forced on for
	// encrypted images, as the backplane requires.
	CloudInit bool
	// BYOL says the image carries its own OS licence. Forced on for
	// encrypted Red Hat images (OS codes REDHAT_*), as the backplane
	// requires.
	BYOL bool
}

// Encryption is what an encrypted import needs besides the image.
type Encryption struct {
	// RootKeyCRN is the CRN of the Key Protect or HPCS root key that wraps
	// the DEK. Its region must be the bucket's.
	RootKeyCRN string
	// WrappedDEK is the base64 ciphertext the key service returned when
	// the DEK was wrapped (without additional authenticated data: the
	// import has no field for it).
	WrappedDEK string
}

// Template status key names (SoftLayer_Virtual_Guest_Block_Device_Template_Group_Status).
// IBM documents only that provisioning needs Active (../docs/CLOUD.md section 5.2).
const (
	TemplateActive = "ACTIVE"
	TemplateError  = "ERROR"
)

// Template is an image template (a block device template group).
type Template struct {
	ID               int
	GlobalIdentifier string
	Name             string
	Note             string
	CreateDate       time.Time
	// Status is the status keyName, e.g. "ACTIVE", "PENDING", "ERROR".
	Status string
	// StatusName and StatusDescription are the status's display name and
	// description; for a failed import the description says why.
	StatusName        string
	StatusDescription string
	// Transaction is the name of the status of the transaction running on
	// the template (an import or export step), "" when none runs.
	Transaction string
	// TransactionDetail is that status's friendly name.
	TransactionDetail string
}

// Active reports whether servers can be ordered from the template: status
// Active and no transaction running.
func (t *Template) Active() bool {
	return isStatus(t.Status, t.StatusName, TemplateActive) && t.Transaction == ""
}

// Failed reports whether the template is in an error status.
func (t *Template) Failed() bool {
	return isStatus(t.Status, t.StatusName, TemplateError) ||
		strings.Contains(strings.ToUpper(t.Status), "FAIL")
}

// FailureReason is what the backplane said about a failed import: the
// status description, else the transaction's detail.
func (t *Template) FailureReason() string {
	if t.StatusDescription != "" {
		return t.StatusDescription
	}
	return t.TransactionDetail
}

func isStatus(keyName, name, want string) bool {
	return strings.EqualFold(keyName, want) || (keyName == "" && strings.EqualFold(name, want))
}

// templateMask selects what Template holds.
const templateMask = "mask[id,globalIdentifier,name,note,createDate,status,transaction[transactionStatus]]"

func templateFrom(g datatypes.Virtual_Guest_Block_Device_Template_Group) Template {
	t := Template{
		ID:               num(g.Id),
		GlobalIdentifier: str(g.GlobalIdentifier),
		Name:             str(g.Name),
		Note:             str(g.Note),
		CreateDate:       tm(g.CreateDate),
	}
	if s := g.Status; s != nil {
		t.Status, t.StatusName, t.StatusDescription = str(s.KeyName), str(s.Name), str(s.Description)
	}
	if tx := g.Transaction; tx != nil {
		t.Transaction = "UNKNOWN"
		if ts := tx.TransactionStatus; ts != nil {
			if n := str(ts.Name); n != "" {
				t.Transaction = n
			}
			t.TransactionDetail = str(ts.FriendlyName)
		}
	}
	return t
}

// OSReferenceCodes returns the operating system reference codes VHD imports
// accept (getVhdImportSoftwareDescriptions), mapped to their names. The
// first successful answer is cached for the Client's life.
func (c *Client) OSReferenceCodes(ctx context.Context) (map[string]string, error) {
	c.osMu.Lock()
	defer c.osMu.Unlock()
	if c.osCodes != nil {
		return maps.Clone(c.osCodes), nil
	}
	var descs []datatypes.Software_Description
	err := c.read(ctx, "SoftLayer_Virtual_Guest_Block_Device_Template_Group::getVhdImportSoftwareDescriptions",
		func(s *session.Session) (err error) {
			descs, err = services.GetVirtualGuestBlockDeviceTemplateGroupService(s).
				Mask("mask[referenceCode,name,version]").GetVhdImportSoftwareDescriptions()
			return err
		})
	if err != nil {
		return nil, err
	}
	codes := make(map[string]string, len(descs))
	for _, d := range descs {
		if rc := str(d.ReferenceCode); rc != "" {
			codes[rc] = strings.TrimSpace(str(d.Name) + " " + str(d.Version))
		}
	}
	c.osCodes = codes
	return maps.Clone(codes), nil
}

// Import validates req (see ValidateImport) and then starts the import with
// createFromIcos. It returns the new template, whose import runs
// asynchronously on the backplane: wait for it with WaitTemplate.
// createFromIcos is sent once and never retried; after an error whose
// outcome is unknown (a timeout), look for the template with
// FindTemplateByName before importing again.
func (c *Client) Import(ctx context.Context, req ImportRequest) (*Template, error) {
	u, err := c.validate(ctx, &req)
	if err != nil {
		return nil, err
	}
	cfg := datatypes.Container_Virtual_Guest_Block_Device_Template_Configuration{
		Name:                         sp(req.Name),
		Uri:                          sp(u.String()),
		IbmApiKey:                    sp(req.APIKey.Reveal()),
		OperatingSystemReferenceCode: sp(req.OSCode),
		CloudInit:                    bp(req.CloudInit),
		Byol:                         bp(req.BYOL),
	}
	if req.Note != "" {
		cfg.Note = sp(req.Note)
	}
	if e := req.Encryption; e != nil {
		cfg.IsEncrypted = bp(true)
		cfg.CrkCrn = sp(e.RootKeyCRN)
		cfg.WrappedDek = sp(e.WrappedDEK)
		cfg.CloudInit = bp(true)
		if strings.HasPrefix(strings.ToUpper(req.OSCode), "REDHAT_") {
			cfg.Byol = bp(true)
		}
	}
	var g datatypes.Virtual_Guest_Block_Device_Template_Group
	err = c.write(ctx, "SoftLayer_Virtual_Guest_Block_Device_Template_Group::createFromIcos",
		func(s *session.Session) (err error) {
			g, err = services.GetVirtualGuestBlockDeviceTemplateGroupService(s).CreateFromIcos(&cfg)
			return err
		}, req.APIKey)
	if err != nil {
		return nil, err
	}
	if g.Id == nil {
		return nil, errors.New("classic: createFromIcos answered without a template id")
	}
	t := templateFrom(g)
	c.opts.logger.DebugContext(ctx, "classic: import started", "template", t.ID, "name", t.Name, "uri", u.String())
	return &t, nil
}

// GetTemplate reads an image template.
func (c *Client) GetTemplate(ctx context.Context, id int) (*Template, error) {
	var g datatypes.Virtual_Guest_Block_Device_Template_Group
	err := c.read(ctx, "SoftLayer_Virtual_Guest_Block_Device_Template_Group::getObject", func(s *session.Session) (err error) {
		g, err = services.GetVirtualGuestBlockDeviceTemplateGroupService(s).Id(id).Mask(templateMask).GetObject()
		return err
	})
	if err != nil {
		return nil, err
	}
	t := templateFrom(g)
	return &t, nil
}

// WaitTemplate polls a template until it is Active and returns it. It
// returns an *ImportFailedError when the template ends in an error status
// (its Reason is the backplane's), and ctx's error when ctx ends first.
// Progress is reported to the TemplateProgress callback whenever the status
// or the transaction changes. Imports take from minutes to an hour: give
// ctx a deadline to match.
func (c *Client) WaitTemplate(ctx context.Context, id int, opts ...WaitOption) (*Template, error) {
	wo := c.waitOptions(opts)
	var last *Template
	err := c.poll(ctx, wo, fmt.Sprintf("template %d", id), func() (string, bool, error) {
		t, err := c.GetTemplate(ctx, id)
		if err != nil {
			return "", false, err
		}
		last = t
		key := t.Status + "|" + t.Transaction
		if wo.onTemplate != nil {
			wo.onTemplate(*t)
		}
		switch {
		case t.Failed():
			return key, true, &ImportFailedError{TemplateID: id, Status: t.Status, Reason: t.FailureReason()}
		case t.Active():
			return key, true, nil
		}
		return key, false, nil
	})
	if err != nil {
		return last, err
	}
	return last, nil
}

// ExportRequest describes an export of a template to Cloud Object Storage
// (copyToIcos).
type ExportRequest struct {
	// URI is cos://<region>/<bucket>/<object>. The backplane writes each
	// block device as <object>-<n>.vhd (ExportedObjectName).
	URI string
	// APIKey is the IBM Cloud API key the backplane writes the object
	// with. Required; never appears in errors.
	APIKey *secret.String
	// ObjectExists, when set, is polled (with the wait options' backoff)
	// for ExportedObjectName(object, 0); the export is done when the
	// object exists and the template has no transaction running. When
	// nil, Export waits until the template's transaction has ended (or,
	// when none is ever seen, for two polls without one): a heuristic,
	// since copyToIcos answers only true. Prefer setting it.
	ObjectExists func(ctx context.Context, bucket, object string) (bool, error)
}

// ExportedObjectName is the name copyToIcos gives block device n of an
// export to object: "<object>-<n>.vhd" (../docs/CLOUD.md section 7.3; IBM's import
// naming convention <name>.vhd-0.vhd is the same rule applied to <name>.vhd).
func ExportedObjectName(object string, n int) string {
	return fmt.Sprintf("%s-%d.vhd", object, n)
}

// Export copies an (unencrypted) image template to COS with copyToIcos and
// waits until the export is done (see ExportRequest.ObjectExists). It returns the URI of the first exported
// object. Encrypted templates cannot be exported; the backplane refuses.
func (c *Client) Export(ctx context.Context, templateID int, req ExportRequest, opts ...WaitOption) (string, error) {
	u, err := ParseCOSURI(req.URI)
	if err != nil {
		return "", err
	}
	if req.APIKey.Empty() {
		return "", errors.New("classic: export: empty API key")
	}
	cfg := datatypes.Container_Virtual_Guest_Block_Device_Template_Configuration{
		Uri:       sp(u.String()),
		IbmApiKey: sp(req.APIKey.Reveal()),
	}
	var ok bool
	err = c.write(ctx, "SoftLayer_Virtual_Guest_Block_Device_Template_Group::copyToIcos", func(s *session.Session) (err error) {
		ok, err = services.GetVirtualGuestBlockDeviceTemplateGroupService(s).Id(templateID).CopyToIcos(&cfg)
		return err
	}, req.APIKey)
	if err != nil {
		return "", err
	}
	if !ok {
		return "", fmt.Errorf("classic: copyToIcos of template %d answered false", templateID)
	}
	out := COSURI{Region: u.Region, Bucket: u.Bucket, Object: ExportedObjectName(u.Object, 0)}
	wo := c.waitOptions(opts)
	sawTx, idle := false, 0
	err = c.poll(ctx, wo, "export of template "+fmt.Sprint(templateID), func() (string, bool, error) {
		if req.ObjectExists != nil {
			exists, err := req.ObjectExists(ctx, out.Bucket, out.Object)
			if err != nil {
				return "", false, fmt.Errorf("classic: checking for %s: %w", out, err)
			}
			if !exists {
				return "object absent", false, nil
			}
		}
		t, err := c.GetTemplate(ctx, templateID)
		if err != nil {
			return "", false, err
		}
		if wo.onTemplate != nil {
			wo.onTemplate(*t)
		}
		if t.Failed() {
			return "", true, &ImportFailedError{TemplateID: templateID, Status: t.Status, Reason: t.FailureReason()}
		}
		if t.Transaction != "" {
			sawTx = true
			return t.Transaction, false, nil
		}
		// No transaction. With ObjectExists the object is there: done.
		// Otherwise done once a transaction was seen to end; an export
		// that ended before the first poll is never seen running, so two
		// idle polls in a row are taken as done too.
		idle++
		return "idle", req.ObjectExists != nil || sawTx || idle >= 2, nil
	})
	return out.String(), err
}

// FindTemplateByName returns the account's private image template with the
// given name (Account::getPrivateBlockDeviceTemplateGroups filtered on
// name). It returns an error matching ErrNotFound when there is none and
// ErrAmbiguous when there are several (names are not unique).
func (c *Client) FindTemplateByName(ctx context.Context, name string) (*Template, error) {
	return c.findTemplate(ctx, "name", name)
}
