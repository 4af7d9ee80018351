package slsim

import (
	"context"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strings"

	"github.com/softlayer/softlayer-go/datatypes"
)

// importRegions lists the regions imports are accepted from.
func (s *Server) importRegions() string {
	return strings.Join(slices.Sorted(maps.Keys(s.cfg.ImportDatacenters)), ", ")
}

// storageLocations serves getStorageLocations: every configured data center,
// in the shape of softlayer-python's fixture (id, longName, name, statusId).
// Which data centers the real API lists depends on the account; that every
// configured one is listed is invented.
func (s *Server) storageLocations(c *call) (any, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, err := s.lookupTemplate(c); err != nil {
		return nil, err
	}
	out := make([]datatypes.Location, 0, len(s.cfg.Datacenters))
	for _, dc := range s.cfg.Datacenters {
		if l := s.location(dc); l != nil {
			out = append(out, *l)
		}
	}
	return out, nil
}

// addLocations serves addLocations: it copies a template whose import is
// done to each given data center (SoftLayer_Location by id, as
// softlayer-cli sends them, or by name) as a new child with a transaction
// that lasts Config.CopyDuration. A data center that already holds a copy
// is skipped. It answers true (SLDN: "create transaction(s) to add
// available locations"). The refusals and their messages are invented.
func (s *Server) addLocations(c *call) (any, error) {
	var locs []datatypes.Location
	ok, err := c.param(0, &locs)
	if err != nil {
		return nil, err
	}
	if !ok || len(locs) == 0 {
		return nil, errPublic("addLocations needs an array of SoftLayer_Location.")
	}
	s.mu.Lock()
	t, err := s.lookupTemplate(c)
	if err != nil {
		s.mu.Unlock()
		return nil, err
	}
	if t.parentID != 0 {
		if p, ok := s.templates[t.parentID]; ok {
			t = p
		}
	}
	var dcs []string
	for _, l := range locs {
		dc := ""
		for name, id := range s.locs {
			if (l.Id != nil && *l.Id == id) || (l.Name != nil && *l.Name == name) {
				dc = name
			}
		}
		if dc == "" {
			s.mu.Unlock()
			return nil, errInvalid("Location %s is not a storage location of image template %d; see getStorageLocations.", locationLabel(l), t.id)
		}
		dcs = append(dcs, dc)
	}
	if imp := s.importChild(t); t.status != TemplateStatusActive || imp == nil || !imp.ready {
		s.mu.Unlock()
		return nil, errPublic("Image template %d has no completed image yet; add locations once its import is done.", t.id)
	}
	var started []*template
	for _, dc := range dcs {
		if s.childIn(t, dc) != nil {
			continue
		}
		ch := s.newChild(t, dc)
		now := s.clock.Now()
		ch.tx = &transaction{id: s.nextTx(), name: TxCopy, created: now, change: now}
		s.templates[ch.id] = ch
		started = append(started, ch)
	}
	for _, ch := range started {
		id := ch.id
		if !s.goBackground(s.ctx, func(ctx context.Context) { s.runCopy(ctx, id) }) {
			ch.tx = nil
		}
	}
	s.mu.Unlock()
	return true, nil
}

func locationLabel(l datatypes.Location) string {
	switch {
	case l.Id != nil:
		return fmt.Sprint(*l.Id)
	case l.Name != nil:
		return *l.Name
	}
	return "(none)"
}

// runCopy finishes a copy to another data center after CopyDuration.
func (s *Server) runCopy(ctx context.Context, childID int) {
	if err := s.clock.Sleep(ctx, s.cfg.CopyDuration); err != nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if ch, ok := s.templates[childID]; ok {
		ch.tx, ch.ready = nil, true
	}
}

// activeTemplate finds the caller's parent template by GUID (or id) and
// checks that a server can be ordered from it in data center dc: status
// Active (documented: provisioning needs an Active template) and a child in
// dc whose disks are in place, with no transaction (the placement rule:
// an image template is provisioned where it has a copy; SLDN "Managing
// Image Templates", and image-templates import-image.md: an imported image
// lands in one data center and can then be moved). Without a copy in dc
// the order fails with SoftLayer_Exception_Order_InvalidLocation and the
// message "The location provided for this order is invalid." (the code
// and sentence the real API answers for an order in a location that does
// not offer it, as quoted in softlayer-python issues #1632 and #2127); that
// the real API answers so for a template's location, and the rest of the
// message, are invented. Caller holds s.mu.
func (s *Server) activeTemplate(acct *account, guid string, id int, dc string) (int, error) {
	var t *template
	for _, x := range s.templates {
		if x.acct == acct && x.parentID == 0 && (guid != "" && x.guid == guid || id != 0 && x.id == id) {
			t = x
			break
		}
	}
	if t == nil {
		what := guid
		if what == "" {
			what = fmt.Sprint(id)
		}
		return 0, &apiError{http.StatusNotFound, ExceptionObjectNotFound, fmt.Sprintf("Unable to find image template '%s'.", what)}
	}
	if t.status != TemplateStatusActive {
		st := templateStatuses[t.status]
		msg := fmt.Sprintf("Image template %s (%s) is not Active (status %s); only an Active image template can be provisioned.", t.guid, t.name, st.name)
		if t.status == TemplateStatusError && t.reason != "" {
			msg += " Import failed: " + t.reason + "."
		}
		return 0, errPublic("%s", msg)
	}
	ch := s.childIn(t, dc)
	switch {
	case ch == nil:
		var where []string
		for _, cid := range t.children {
			if c, ok := s.templates[cid]; ok {
				where = append(where, c.datacenters...)
			}
		}
		return 0, &apiError{http.StatusInternalServerError, ExceptionOrderInvalidLocation, fmt.Sprintf(
			"The location provided for this order is invalid. Image template %s is not available in %s (it is in %s); add the location to the image template first.",
			t.guid, dc, strings.Join(where, ", "))}
	case ch.tx != nil:
		return 0, errPublic("Image template %s (%s) has an active transaction in %s (%s); try again when it has finished.", t.guid, t.name, dc, ch.tx.name)
	case !ch.ready:
		return 0, errPublic("Image template %s (%s) has no image in %s.", t.guid, t.name, dc)
	}
	return t.id, nil
}
