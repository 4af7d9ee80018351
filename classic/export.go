package classic

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/softlayer/softlayer-go/datatypes"
	"github.com/softlayer/softlayer-go/services"
	"github.com/softlayer/softlayer-go/session"

	"github.com/e2eimage/e2eimage/importspec"
	"github.com/e2eimage/e2eimage/secret"
)

// ErrExportTargetExists is returned by Export, before anything is exported,
// when objects with the names an export would write already exist: a new
// export could not be told apart from them.
var ErrExportTargetExists = errors.New("classic: exported objects already exist")

// ErrExportMissing is matched by an *ExportMissingError.
var ErrExportMissing = errors.New("classic: exported objects not found")

// ListedObject is one object an ObjectLister found.
type ListedObject struct {
	Key  string
	Size int64
}

// ObjectLister lists the objects of a bucket whose keys start with prefix
// (every page). Export finds the objects an export wrote with it. A COS
// client can provide one (classic does not import the cos package): wrap
// ListObjectsV2 of the bucket's region.
type ObjectLister func(ctx context.Context, bucket, prefix string) ([]ListedObject, error)

// ExportRequest describes an export of a template to Cloud Object Storage
// (copyToIcos).
type ExportRequest struct {
	// URI is cos://<region>/<bucket>/<file name>. The backplane writes one
	// object per block device; IBM documents that for the file name
	// image.vhd the first block device is exported as image-0.vhd, the
	// second as image-1.vhd (importspec.ExportedObjectName, where the
	// source and the tolerated image.vhd-0.vhd form are given).
	URI string
	// APIKey is the IBM Cloud API key the backplane writes the objects
	// with. Required; never appears in errors.
	APIKey *secret.String
	// List finds the exported objects by listing the name's prefix.
	// Required.
	List ObjectLister
}

// ExportedObject is one object an export wrote.
type ExportedObject struct {
	// URI is cos://<region>/<bucket>/<key>.
	URI string
	Key string
	// BlockDevice is the block device number in the name (0 for the
	// boot disk).
	BlockDevice int
	Size        int64
}

// ExportResult lists the objects an export wrote, by block device.
type ExportResult struct {
	Objects []ExportedObject
}

// ExportMissingError reports an export whose template shows no transaction
// any more while none of the objects it should have written exist, for
// longer than the unknown-state bound. It matches ErrExportMissing.
type ExportMissingError struct {
	TemplateID int
	URI        string
	Prefix     string
	For        time.Duration
}

func (e *ExportMissingError) Error() string {
	return fmt.Sprintf("classic: export of image template %d to %s: no transaction runs and no object named %s-<n>.vhd exists after %s",
		e.TemplateID, e.URI, e.Prefix, e.For.Round(time.Second))
}

// Is matches ErrExportMissing.
func (e *ExportMissingError) Is(target error) bool { return target == ErrExportMissing }

// findExported lists the objects an export of u wrote.
func findExported(ctx context.Context, list ObjectLister, u COSURI) ([]ExportedObject, error) {
	prefix := importspec.ExportStem(u.Object)
	objs, err := list(ctx, u.Bucket, prefix)
	if err != nil {
		return nil, fmt.Errorf("classic: listing %s/%s*: %w", u.Bucket, prefix, err)
	}
	var out []ExportedObject
	for _, o := range objs {
		n, ok := importspec.ParseExportedName(u.Object, o.Key)
		if !ok {
			continue
		}
		out = append(out, ExportedObject{
			URI: COSURI{Region: u.Region, Bucket: u.Bucket, Object: o.Key}.String(), Key: o.Key, BlockDevice: n, Size: o.Size,
		})
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].BlockDevice != out[j].BlockDevice {
			return out[i].BlockDevice < out[j].BlockDevice
		}
		return out[i].Key < out[j].Key
	})
	return out, nil
}

// Export copies an image template to COS with copyToIcos and waits until
// the export is done: no transaction runs on the template or its copies
// and the exported objects exist, found by listing the file name's prefix
// (req.List). IBM allows exporting encrypted templates as well as standard
// ones. Export refuses (ErrExportTargetExists) when objects with the
// export's names already exist, since the new ones could not be told apart
// from them. The wait ends like WaitTemplate's on a vanished template, and
// with an *ExportMissingError when no transaction runs and no object
// appears for longer than the unknown-state bound.
func (c *Client) Export(ctx context.Context, templateID int, req ExportRequest, opts ...WaitOption) (*ExportResult, error) {
	u, err := ParseCOSURI(req.URI)
	if err != nil {
		return nil, err
	}
	if req.APIKey.Empty() {
		return nil, errors.New("classic: export: empty API key")
	}
	if req.List == nil {
		return nil, errors.New("classic: export: no ObjectLister to find the exported objects with")
	}
	before, err := findExported(ctx, req.List, u)
	if err != nil {
		return nil, err
	}
	if len(before) > 0 {
		keys := make([]string, len(before))
		for i, o := range before {
			keys[i] = o.Key
		}
		return nil, fmt.Errorf("%w: %s (remove them or export under another file name)", ErrExportTargetExists, strings.Join(keys, ", "))
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
		return nil, err
	}
	if !ok {
		return nil, fmt.Errorf("classic: copyToIcos of template %d answered false", templateID)
	}
	wo := c.waitOptions(opts)
	var (
		found     []ExportedObject
		idleSince time.Time
	)
	err = c.poll(ctx, wo, "export of template "+strconv.Itoa(templateID), func() (string, bool, error) {
		t, err := c.GetTemplate(ctx, templateID)
		if err != nil {
			if errors.Is(err, ErrNotFound) {
				return "", true, &TemplateGoneError{TemplateID: templateID, cause: err}
			}
			return "", false, err
		}
		if wo.onTemplate != nil {
			wo.onTemplate(*t)
		}
		if t.Failed() {
			return "", true, &ImportFailedError{TemplateID: templateID, Status: t.failedStatus(), Reason: t.FailureReason()}
		}
		if t.Busy() {
			idleSince = time.Time{}
			return t.progress(), false, nil
		}
		if found, err = findExported(ctx, req.List, u); err != nil {
			return "", false, err
		}
		if len(found) > 0 {
			return "exported", true, nil
		}
		now := c.opts.now()
		if idleSince.IsZero() {
			idleSince = now
		}
		if d := now.Sub(idleSince); d >= wo.unknownBound {
			return "", true, &ExportMissingError{TemplateID: templateID, URI: u.String(), Prefix: importspec.ExportStem(u.Object), For: d}
		}
		return "no transaction, no object yet", false, nil
	})
	if err != nil {
		return nil, err
	}
	return &ExportResult{Objects: found}, nil
}
