package classic

import (
	"context"
	"encoding/json"
	"maps"
	"strings"

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
	// must end in .vhd (import-image.md's example: filename.vhd-0.vhd).
	URI string
	// APIKey is the IBM Cloud API key (of a service ID) that the backplane
	// uses to read the object and, for an encrypted image, to unwrap the
	// DEK. Required. It is sent in the request body and never appears in
	// errors.
	APIKey *secret.String
	// OSCode is the operating system reference code, e.g. UBUNTU_22_64.
	// It must be one the API accepts (OSReferenceCodes) and, unless
	// AnyOSCode is set, one of the systems IBM documents for imports and
	// E2E images (SupportedOperatingSystems).
	OSCode string
	// AnyOSCode accepts any code the API accepts, not only the documented
	// systems.
	AnyOSCode bool
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
	// encrypted images: IBM documents that an encrypted image "must be
	// cloud-init enabled", and its console's import form selects the
	// option and locks it; that the API needs it is this package's
	// reading, not documented.
	CloudInit bool
	// BYOL says the image carries its own OS licence. Forced on for
	// encrypted Red Hat images (OS codes REDHAT_*): the console's import
	// form selects it and locks it for them "because your encrypted image
	// must include its own operating system license" (import-image.md);
	// that the API needs it is this package's reading. Refused for
	// encrypted Windows images: "For Windows images, you cannot select
	// Cloud Init if you specify that you use your own license"
	// (import-image.md), and an encrypted image is cloud-init enabled.
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
	const op = "SoftLayer_Virtual_Guest_Block_Device_Template_Group::createFromIcos"
	var raw json.RawMessage
	err = c.write(ctx, op, func(s *session.Session) error {
		return callRaw(s, "SoftLayer_Virtual_Guest_Block_Device_Template_Group", "createFromIcos", nil, []any{&cfg}, &raw)
	}, req.APIKey)
	if err != nil {
		return nil, err
	}
	var g datatypes.Virtual_Guest_Block_Device_Template_Group
	if err := c.decodeAnswer(op, raw, &g, []string{"id"}, req.APIKey); err != nil {
		return nil, err
	}
	t := templateFrom(g)
	c.opts.logger.DebugContext(ctx, "classic: import started", "template", t.ID, "name", t.Name, "uri", u.String())
	return &t, nil
}

// FindTemplateByName returns the account's private image template with the
// given name (Account::getPrivateBlockDeviceTemplateGroups filtered on
// name). It returns an error matching ErrNotFound when there is none and
// ErrAmbiguous when there are several (names are not unique).
func (c *Client) FindTemplateByName(ctx context.Context, name string) (*Template, error) {
	return c.findTemplate(ctx, "name", name)
}
