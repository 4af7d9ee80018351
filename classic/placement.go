package classic

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/softlayer/softlayer-go/datatypes"
	"github.com/softlayer/softlayer-go/services"
	"github.com/softlayer/softlayer-go/session"

	"github.com/e2eimage/e2eimage/importspec"
)

// ErrTemplateNotInDatacenter is matched by a *PlacementError: the template
// has no copy in the data center an order asks for.
var ErrTemplateNotInDatacenter = errors.New("classic: image template is not in the data center")

// ImportDatacenter returns the data center IBM documents for imports from a
// bucket in the COS region, and false when IBM names none (jp-tok, au-syd,
// or a region that is not an import location): importspec.ImportDatacenter.
// For a region without a documented data center the import's data center
// is read from the template once it exists.
func ImportDatacenter(region string) (string, bool) { return importspec.ImportDatacenter(region) }

// Placement says where a server ordered from an image template runs, and
// whether the template is copied there first.
type Placement struct {
	// Datacenter is where the server is ordered; "" when it is the
	// import's data center and that is not known yet (see
	// ImportDatacenter).
	Datacenter string
	// TemplateDatacenters are the data centers that hold a copy of the
	// template (read from the template), or the import data center IBM
	// documents for the region (before the import).
	TemplateDatacenters []string
	// Copy says the template is copied to Datacenter (addLocations)
	// before the order, because it has no copy there. Before the import
	// of a region whose data center IBM does not name, Copy is true when
	// a data center was asked for: the copy is skipped if the import
	// lands there.
	Copy bool
	// Asked says Datacenter was given in the order (ServerSpec.Datacenter)
	// rather than taken from the template.
	Asked bool
}

// String is a one-line description for a preflight report.
func (p Placement) String() string {
	where := strings.Join(p.TemplateDatacenters, ", ")
	switch {
	case p.Datacenter == "":
		return "the server is ordered in the data center the import lands in (IBM documents none for this region; it is read from the template)"
	case p.Copy && where == "":
		return fmt.Sprintf("the server is ordered in %s; the template is first copied there (addLocations) unless the import lands there", p.Datacenter)
	case p.Copy:
		return fmt.Sprintf("the server is ordered in %s; the template, in %s, is first copied there (addLocations)", p.Datacenter, where)
	case p.Asked:
		return fmt.Sprintf("the server is ordered in %s, where the template is", p.Datacenter)
	}
	return fmt.Sprintf("the server is ordered in %s, the template's data center", p.Datacenter)
}

// PlanPlacement says, before an import from a bucket in region, where a
// server ordered with ServerSpec.Datacenter dc ("" for the template's own
// data center) will run and whether the template will be copied first.
func PlanPlacement(region, dc string) Placement {
	imp, known := ImportDatacenter(region)
	p := Placement{Datacenter: dc, Asked: dc != ""}
	if known {
		p.TemplateDatacenters = []string{imp}
	}
	switch {
	case dc == "":
		p.Datacenter = imp
	case !known:
		p.Copy = true
	default:
		p.Copy = !strings.EqualFold(dc, imp)
	}
	return p
}

// PlacementError reports an order in a data center where the template has
// no copy. It matches ErrTemplateNotInDatacenter.
type PlacementError struct {
	TemplateID          int
	Datacenter          string
	TemplateDatacenters []string
	// Reason says more, e.g. that VerifyServer does not copy templates.
	Reason string
}

func (e *PlacementError) Error() string {
	msg := fmt.Sprintf("classic: image template %d is not in %s (it is in %s)", e.TemplateID, e.Datacenter, orNone(strings.Join(e.TemplateDatacenters, ", "), ""))
	if e.Reason != "" {
		msg += ": " + e.Reason
	}
	return msg
}

// Is matches ErrTemplateNotInDatacenter.
func (e *PlacementError) Is(target error) bool { return target == ErrTemplateNotInDatacenter }

// placement decides where spec is ordered from t. It fails with
// ErrTemplateNotActive when the template cannot be ordered from anywhere
// yet, and with an *InvalidServerError when no data center was asked for
// and the template is in several.
func placement(t *Template, asked string) (Placement, error) {
	p := Placement{Datacenter: asked, Asked: asked != "", TemplateDatacenters: slices.Clone(t.Datacenters)}
	notActive := func() (Placement, error) {
		return p, fmt.Errorf("classic: ordering from image template %d (%s): %w", t.ID, t.progress(), ErrTemplateNotActive)
	}
	if t.Failed() || !t.ActiveStatus() {
		return notActive()
	}
	if asked == "" {
		var ready []string
		for i := range t.Copies {
			if t.Copies[i].Ready() && !slices.Contains(ready, t.Copies[i].Datacenter) {
				ready = append(ready, t.Copies[i].Datacenter)
			}
		}
		switch {
		case len(ready) == 1 && ready[0] != "":
			p.Datacenter = ready[0]
			return p, nil
		case len(ready) > 1:
			return p, &InvalidServerError{Field: "Datacenter", Reason: fmt.Sprintf("empty, and image template %d is in %s: choose one", t.ID, strings.Join(ready, ", "))}
		}
		return notActive()
	}
	if t.ReadyIn(asked) {
		return p, nil
	}
	if !t.disksPresent() {
		return notActive() // the import is still running, or left no disks
	}
	// A copy in asked is under way (wait for it), or there is none (make
	// one).
	p.Copy = true
	return p, nil
}

// Placement reads the template of spec and says where the server would be
// ordered and whether CreateServer would copy the template there first. It
// changes nothing.
func (c *Client) Placement(ctx context.Context, spec ServerSpec) (*Placement, error) {
	t, err := c.resolveTemplate(ctx, spec.Template)
	if err != nil {
		return nil, err
	}
	p, err := placement(t, spec.Datacenter)
	if err != nil {
		return nil, err
	}
	return &p, nil
}

// CopyTemplate copies an image template to the data center dc
// (getStorageLocations to find dc's location id, then addLocations) and
// waits until the copy there is ready: no transaction on it and its block
// devices in place. A template that already has a ready copy in dc is
// returned at once. addLocations is sent once and never retried. The wait
// ends like WaitTemplate's: on a vanished template, an error status, or no
// copy appearing in dc and nothing running for longer than the
// unknown-state bound.
func (c *Client) CopyTemplate(ctx context.Context, templateID int, dc string, opts ...WaitOption) (*Template, error) {
	t, err := c.GetTemplate(ctx, templateID)
	if err != nil {
		return nil, err
	}
	if t.ReadyIn(dc) {
		return t, nil
	}
	if t.Copy(dc) == nil {
		if err := c.addLocation(ctx, templateID, dc); err != nil {
			return t, err
		}
	}
	return c.waitCopy(ctx, templateID, dc, opts...)
}

// addLocation asks for a copy of the template in dc.
func (c *Client) addLocation(ctx context.Context, templateID int, dc string) error {
	var locs []datatypes.Location
	err := c.read(ctx, "SoftLayer_Virtual_Guest_Block_Device_Template_Group::getStorageLocations", func(s *session.Session) (err error) {
		locs, err = services.GetVirtualGuestBlockDeviceTemplateGroupService(s).Id(templateID).GetStorageLocations()
		return err
	})
	if err != nil {
		return err
	}
	var id *int
	var names []string
	for _, l := range locs {
		names = append(names, str(l.Name))
		if strings.EqualFold(str(l.Name), dc) && l.Id != nil {
			id = l.Id
		}
	}
	if id == nil {
		return &PlacementError{TemplateID: templateID, Datacenter: dc,
			Reason: fmt.Sprintf("%s is not a storage location of the template (getStorageLocations: %s)", dc, orNone(strings.Join(names, ", "), ""))}
	}
	var ok bool
	err = c.write(ctx, "SoftLayer_Virtual_Guest_Block_Device_Template_Group::addLocations", func(s *session.Session) (err error) {
		ok, err = services.GetVirtualGuestBlockDeviceTemplateGroupService(s).Id(templateID).AddLocations([]datatypes.Location{{Id: id}})
		return err
	})
	if err != nil {
		return err
	}
	if !ok {
		return fmt.Errorf("classic: addLocations of template %d to %s answered false", templateID, dc)
	}
	c.opts.logger.DebugContext(ctx, "classic: template copy requested", "template", templateID, "datacenter", dc)
	return nil
}

// waitCopy polls the template until its copy in dc is ready.
func (c *Client) waitCopy(ctx context.Context, templateID int, dc string, opts ...WaitOption) (*Template, error) {
	wo := c.waitOptions(opts)
	var (
		last      *Template
		idleSince time.Time
	)
	err := c.poll(ctx, wo, fmt.Sprintf("copy of template %d to %s", templateID, dc), func() (string, bool, error) {
		t, err := c.GetTemplate(ctx, templateID)
		if err != nil {
			if errors.Is(err, ErrNotFound) {
				return "", true, &TemplateGoneError{TemplateID: templateID, Last: last, cause: err}
			}
			return "", false, err
		}
		last = t
		if wo.onTemplate != nil {
			wo.onTemplate(*t)
		}
		key := t.progress()
		switch {
		case t.Failed():
			return key, true, &ImportFailedError{TemplateID: templateID, Status: t.failedStatus(), Reason: t.FailureReason()}
		case t.ReadyIn(dc):
			return key, true, nil
		case t.Busy():
			idleSince = time.Time{}
			return key, false, nil
		}
		now := c.opts.now()
		if idleSince.IsZero() {
			idleSince = now
		}
		if d := now.Sub(idleSince); d >= wo.unknownBound {
			return key, true, &TemplateStateError{TemplateID: templateID, State: key, For: d}
		}
		return key, false, nil
	})
	return last, err
}
