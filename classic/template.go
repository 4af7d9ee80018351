package classic

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/softlayer/softlayer-go/datatypes"
	"github.com/softlayer/softlayer-go/services"
	"github.com/softlayer/softlayer-go/session"
)

// Template status names. SLDN documents two
// (SoftLayer_Virtual_Guest_Block_Device_Template_Group_Status): a server
// can be provisioned only from an Active template, and an operating system
// reload accepts Active or Deprecated. IBM documents no status for a
// running or a failed import. softlayer-cli's fixture
// SoftLayer_Virtual_Guest_Block_Device_Template_Group/getObject.json shows
// a finished import: only status.name "Active" on the parent,
// transactionId null and the disk space on the child; softlayer-python's
// "image detail" reads transactions from children[].transaction, and SLDN
// sets transactionId only "when there is a transaction being performed".
// That an import in progress is a transaction on a child while the parent
// may already say Active is inferred from these, so no wait takes Active
// alone for done.
const (
	TemplateActive     = "Active"
	TemplateDeprecated = "Deprecated"
)

// DefaultUnknownStateBound is how long WaitTemplate accepts a template in a
// state it cannot read (no transaction running, yet not Active with its
// disks in place) before it gives up with a *TemplateStateError. IBM
// documents no bound; this leaves room for the pause between two
// transactions of an import and for a template whose first transaction
// has not been scheduled yet.
const DefaultUnknownStateBound = 15 * time.Minute

// Template is an image template (a block device template group) with the
// copies of its disks (its children, one per data center).
type Template struct {
	ID               int
	GlobalIdentifier string
	Name             string
	Note             string
	CreateDate       time.Time
	// Status is the status keyName when the API gives one (IBM documents
	// none), else the status name; "" when the template has no status.
	Status string
	// StatusName and StatusDescription are the status's display name
	// ("Active", "Deprecated") and description.
	StatusName        string
	StatusDescription string
	// Transaction names the status of a transaction running on the
	// template or, when none runs on the template itself, on one of its
	// copies (an import, a copy to another data center, an export); ""
	// when none runs anywhere. TransactionDetail is its friendly name.
	Transaction       string
	TransactionDetail string
	// Current is the same transaction in full: its group, status and
	// friendly name, the copy it runs on, and (in the TemplateProgress
	// callback of a wait) how long the wait has seen that status.
	Current Transaction
	// BlockDevices counts the block devices the parent group lists.
	BlockDevices int
	// Copies are the template's children: the copy of its disks in each
	// data center that holds one.
	Copies []TemplateCopy
	// Datacenters names the data centers that hold a copy: the copies'
	// data centers, else the parent's datacenters property.
	Datacenters []string
}

// Transaction is a transaction running on an image template or one of its
// copies, as the API reports it (SoftLayer_Provisioning_Version1_Transaction:
// transactionGroup.name, transactionStatus.name and friendlyName, the
// fields softlayer-python's "image detail" shows). IBM documents none of
// the group or status names an import goes through. The zero value means
// no transaction runs.
type Transaction struct {
	// Group is transactionGroup.name, "" when not given.
	Group string
	// Status is transactionStatus.name; "UNKNOWN" for a transaction (or a
	// transactionId) whose status is not given.
	Status string
	// Detail is transactionStatus.friendlyName.
	Detail string
	// CopyID is the child the transaction runs on, 0 for the template
	// itself.
	CopyID int
	// For is how long a wait has seen this status (0 outside a wait): a
	// lower bound of the time the transaction has spent in it.
	For time.Duration
}

// String describes the transaction for messages: status, friendly name,
// group and, within a wait, for how long.
func (x Transaction) String() string {
	if x.Status == "" {
		return "(none)"
	}
	var b strings.Builder
	b.WriteString(x.Status)
	if x.Detail != "" {
		fmt.Fprintf(&b, " %q", x.Detail)
	}
	if x.Group != "" {
		fmt.Fprintf(&b, " (group %s)", x.Group)
	}
	if x.CopyID != 0 {
		fmt.Fprintf(&b, " on copy %d", x.CopyID)
	}
	if x.For > 0 {
		fmt.Fprintf(&b, " for %s", x.For.Round(time.Second))
	}
	return b.String()
}

// key identifies the status for the no-progress bound.
func (x Transaction) key() string {
	return fmt.Sprintf("%d/%s/%s/%s", x.CopyID, x.Group, x.Status, x.Detail)
}

// TemplateCopy is a child group of an image template: the copy of its disks
// in one data center (SLDN: datacenter "will only be populated for child
// template group objects").
type TemplateCopy struct {
	ID         int
	Datacenter string
	// Status and StatusName as for Template; often absent on children.
	Status     string
	StatusName string
	// Transaction and TransactionDetail name the transaction running on
	// this copy, "" when none (SLDN: transactionId "will only be set when
	// there is a transaction being performed on the block device template
	// group").
	Transaction       string
	TransactionDetail string
	// TransactionGroup is the transaction's group name, "" when not given.
	TransactionGroup string
	// BlockDevices counts the copy's block devices; DiskSpaceTotal is its
	// blockDevicesDiskSpaceTotal as the API reports it.
	BlockDevices   int
	DiskSpaceTotal float64
}

// Busy reports whether a transaction runs on the copy.
func (c *TemplateCopy) Busy() bool { return c.Transaction != "" }

// Ready reports whether the copy's disks are in place: no transaction runs
// on it and it has block devices.
func (c *TemplateCopy) Ready() bool {
	return !c.Busy() && (c.BlockDevices > 0 || c.DiskSpaceTotal > 0)
}

// Busy reports whether a transaction runs on the template or on any copy.
func (t *Template) Busy() bool {
	if t.Transaction != "" {
		return true
	}
	for i := range t.Copies {
		if t.Copies[i].Busy() {
			return true
		}
	}
	return false
}

// ActiveStatus reports whether the template's status is Active. An import
// can still be running then: see Active.
func (t *Template) ActiveStatus() bool { return isStatus(t.Status, t.StatusName, TemplateActive) }

// Active reports whether servers can be ordered from the template: status
// Active, no transaction on the template or any copy, and disks in place
// (a copy with block devices or, for a template without children, block
// devices of its own).
func (t *Template) Active() bool {
	return t.ActiveStatus() && !t.Busy() && t.disksPresent()
}

// ReadyIn reports whether servers can be ordered from the template in the
// data center dc: status Active and a copy in dc that is Ready.
func (t *Template) ReadyIn(dc string) bool {
	if !t.ActiveStatus() {
		return false
	}
	c := t.Copy(dc)
	return c != nil && c.Ready()
}

// Copy returns the template's copy in the data center dc, nil when it has
// none there.
func (t *Template) Copy(dc string) *TemplateCopy {
	for i := range t.Copies {
		if strings.EqualFold(t.Copies[i].Datacenter, dc) {
			return &t.Copies[i]
		}
	}
	return nil
}

func (t *Template) disksPresent() bool {
	if len(t.Copies) == 0 {
		return t.BlockDevices > 0
	}
	for i := range t.Copies {
		if t.Copies[i].Ready() {
			return true
		}
	}
	return false
}

// Failed reports whether the template or one of its copies carries a
// status whose key name or name says error or failure. IBM documents no
// such status; this is a heuristic that ends a wait at once when an API
// does report one (WaitTemplate otherwise ends on a vanished template or
// after the unknown-state bound).
func (t *Template) Failed() bool {
	if failedStatus(t.Status, t.StatusName) {
		return true
	}
	for i := range t.Copies {
		if failedStatus(t.Copies[i].Status, t.Copies[i].StatusName) {
			return true
		}
	}
	return false
}

func failedStatus(keyName, name string) bool {
	for _, s := range []string{keyName, name} {
		u := strings.ToUpper(s)
		if strings.Contains(u, "FAIL") || strings.Contains(u, "ERROR") {
			return true
		}
	}
	return false
}

// FailureReason is what the API said about a failed import: the status
// description, else the transaction's detail.
func (t *Template) FailureReason() string {
	if t.StatusDescription != "" {
		return t.StatusDescription
	}
	return t.TransactionDetail
}

// progress is a short description of the template's state for logs and
// errors.
func (t *Template) progress() string {
	var b strings.Builder
	b.WriteString("status ")
	b.WriteString(orNone(t.StatusName, t.Status))
	if t.Transaction != "" {
		fmt.Fprintf(&b, ", transaction %s", t.Current.String())
	}
	for i := range t.Copies {
		c := &t.Copies[i]
		fmt.Fprintf(&b, "; copy %d in %s", c.ID, orNone(c.Datacenter, ""))
		switch {
		case c.Busy():
			fmt.Fprintf(&b, " busy (%s", c.Transaction)
			if c.TransactionDetail != "" {
				fmt.Fprintf(&b, " %q", c.TransactionDetail)
			}
			b.WriteString(")")
		case c.Ready():
			b.WriteString(" ready")
		default:
			b.WriteString(" without block devices")
		}
	}
	if len(t.Copies) == 0 {
		fmt.Fprintf(&b, "; no copies, %d block devices", t.BlockDevices)
	}
	return b.String()
}

func orNone(a, b string) string {
	switch {
	case a != "":
		return a
	case b != "":
		return b
	}
	return "(none)"
}

func isStatus(keyName, name, want string) bool {
	return strings.EqualFold(keyName, want) || strings.EqualFold(name, want)
}

// importState is what WaitTemplate makes of a template.
type importState int

const (
	stateUnknown    importState = iota // not running, not done: undocumented
	stateRunning                       // a transaction runs on the template or a copy
	stateDone                          // Active, no transaction, disks in place
	stateFailed                        // an error status (heuristic, see Failed)
	stateDeprecated                    // documented, but servers cannot be ordered
)

func (t *Template) state() importState {
	switch {
	case t.Failed():
		return stateFailed
	case t.Busy():
		return stateRunning
	case t.Active():
		return stateDone
	case isStatus(t.Status, t.StatusName, TemplateDeprecated):
		return stateDeprecated
	}
	return stateUnknown
}

// templateMask selects what Template holds: the parent's status,
// transaction and block devices and, for each child, the same and its
// data center (the fields softlayer-python's image detail mask and
// softlayer-cli's IMAGE_DETAIL_MASK read).
const templateMask = "mask[id,globalIdentifier,name,note,createDate,statusId,status,transactionId," +
	"transaction[transactionStatus,transactionGroup],blockDevices[id],blockDevicesDiskSpaceTotal,datacenters[id,name]," +
	"children[id,parentId,statusId,status,transactionId,transaction[transactionStatus,transactionGroup],blockDevices[id]," +
	"blockDevicesDiskSpaceTotal,datacenter[id,name]]]"

// transactionOf names the transaction a group reports: the transaction's
// status name, "UNKNOWN" for a transaction (or a transactionId) whose
// status is not given, "" for none.
func transactionOf(g *datatypes.Virtual_Guest_Block_Device_Template_Group) Transaction {
	if tx := g.Transaction; tx != nil {
		x := Transaction{Status: "UNKNOWN"}
		if ts := tx.TransactionStatus; ts != nil {
			if n := str(ts.Name); n != "" {
				x.Status = n
			}
			x.Detail = str(ts.FriendlyName)
		}
		if tg := tx.TransactionGroup; tg != nil {
			x.Group = str(tg.Name)
		}
		return x
	}
	if g.TransactionId != nil && *g.TransactionId != 0 {
		return Transaction{Status: "UNKNOWN"}
	}
	return Transaction{}
}

func groupStatus(s *datatypes.Virtual_Guest_Block_Device_Template_Group_Status) (key, name, desc string) {
	if s == nil {
		return "", "", ""
	}
	key, name, desc = str(s.KeyName), str(s.Name), str(s.Description)
	if key == "" {
		key = name
	}
	return key, name, desc
}

func templateFrom(g datatypes.Virtual_Guest_Block_Device_Template_Group) Template {
	t := Template{
		ID:               num(g.Id),
		GlobalIdentifier: str(g.GlobalIdentifier),
		Name:             str(g.Name),
		Note:             str(g.Note),
		CreateDate:       tm(g.CreateDate),
		BlockDevices:     len(g.BlockDevices),
	}
	t.Status, t.StatusName, t.StatusDescription = groupStatus(g.Status)
	t.Current = transactionOf(&g)
	t.Transaction, t.TransactionDetail = t.Current.Status, t.Current.Detail
	seen := map[string]bool{}
	for i := range g.Children {
		ch := &g.Children[i]
		c := TemplateCopy{ID: num(ch.Id), BlockDevices: len(ch.BlockDevices)}
		if ch.Datacenter != nil {
			c.Datacenter = str(ch.Datacenter.Name)
		}
		if ch.BlockDevicesDiskSpaceTotal != nil {
			c.DiskSpaceTotal = float64(*ch.BlockDevicesDiskSpaceTotal)
		}
		c.Status, c.StatusName, _ = groupStatus(ch.Status)
		x := transactionOf(ch)
		c.Transaction, c.TransactionDetail, c.TransactionGroup = x.Status, x.Detail, x.Group
		if t.Transaction == "" && c.Transaction != "" {
			x.CopyID = c.ID
			t.Current = x
			t.Transaction, t.TransactionDetail = x.Status, x.Detail
		}
		t.Copies = append(t.Copies, c)
		if c.Datacenter != "" && !seen[c.Datacenter] {
			seen[c.Datacenter] = true
			t.Datacenters = append(t.Datacenters, c.Datacenter)
		}
	}
	if len(t.Datacenters) == 0 {
		for _, l := range g.Datacenters {
			if n := str(l.Name); n != "" && !seen[n] {
				seen[n] = true
				t.Datacenters = append(t.Datacenters, n)
			}
		}
	}
	return t
}

// GetTemplate reads an image template with its copies.
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

// WaitTemplate polls a template until its import is done and returns it.
// Done means: status Active, no transaction on the template or on any of
// its copies, and the disks in place (a copy with block devices). The
// parent alone does not tell: it may say Active while a copy is still
// importing. The wait ends with
//
//   - an *ImportFailedError when the template or a copy reports an error
//     status (not documented by IBM; see Template.Failed), or when a copy
//     seen by an earlier poll is missing from two polls in a row while the
//     import is not done (the copy vanished);
//   - a *TemplateGoneError when the template no longer exists (getObject
//     answers SoftLayer_Exception_ObjectNotFound), as when an import was
//     deleted or removed after failing;
//   - a *NoProgressError when one transaction status lasts longer than the
//     no-progress bound (WithNoProgressBound, NoProgressAfter);
//   - a *TemplateStateError when the template is Deprecated, or when it
//     stays in a state WaitTemplate cannot read (no transaction running,
//     yet not done) for longer than the unknown-state bound
//     (WithUnknownStateBound, UnknownStateAfter);
//   - an error naming the last state seen (with its transaction) when
//     transient errors outlast the retry policy or ctx ends.
//
// Transient errors of a poll (see WithReadAttempts) are retried. Progress
// is reported to the TemplateProgress callback after every poll, with
// Template.Current.For set to how long the wait has seen that transaction
// status. Imports take from minutes to an hour: give ctx a deadline to
// match.
func (c *Client) WaitTemplate(ctx context.Context, id int, opts ...WaitOption) (*Template, error) {
	w := &templateWait{c: c, id: id, wo: c.waitOptions(opts)}
	err := c.poll(ctx, w.wo, fmt.Sprintf("template %d", id), func() (string, bool, error) {
		t, err := c.GetTemplate(ctx, id)
		if err != nil {
			if errors.Is(err, ErrNotFound) {
				return "", true, &TemplateGoneError{TemplateID: id, Last: w.last, cause: err}
			}
			return "", false, err
		}
		return w.check(t)
	})
	if err != nil && w.last != nil && w.last.Current.Status != "" && !waitVerdict(err) {
		// Transient errors outlasted the policy, or ctx ended: say which
		// transaction was running and for how long.
		err = fmt.Errorf("%w; last transaction %s", err, w.last.Current.String())
	}
	return w.last, err
}

// waitVerdict reports whether err is one of WaitTemplate's own verdicts,
// which describe the template themselves.
func waitVerdict(err error) bool {
	var (
		fe *ImportFailedError
		ge *TemplateGoneError
		np *NoProgressError
		se *TemplateStateError
	)
	return errors.As(err, &fe) || errors.As(err, &ge) || errors.As(err, &np) || errors.As(err, &se)
}

// templateWait is the state one WaitTemplate keeps across its polls.
type templateWait struct {
	c            *Client
	id           int
	wo           waitOptions
	last         *Template
	unknownSince time.Time
	progress     progressClock
	seenCopies   map[int]TemplateCopy // every copy an earlier poll saw
	missing      map[int]int          // copy id -> polls in a row it was missing
}

// check judges one poll's template.
func (w *templateWait) check(t *Template) (string, bool, error) {
	now := w.c.opts.now()
	// The poll's state key leaves out how long the status has lasted, so
	// that an unchanged status lengthens the poll interval.
	key := t.progress()
	t.Current.For = w.progress.observe(t.Current, now)
	w.last = t
	if w.wo.onTemplate != nil {
		w.wo.onTemplate(*t)
	}
	st := t.state()
	switch st {
	case stateFailed:
		return key, true, &ImportFailedError{TemplateID: w.id, Status: t.failedStatus(), Reason: t.FailureReason(), Transaction: t.Current}
	case stateDone:
		return key, true, nil
	case stateDeprecated:
		return key, true, &TemplateStateError{TemplateID: w.id, State: key, Deprecated: true}
	}
	if gone := w.vanished(t); gone != nil {
		return key, true, &ImportFailedError{TemplateID: w.id, Status: "copy vanished", Transaction: t.Current,
			Reason: fmt.Sprintf("copy %d in %s, last seen with transaction %s, is no longer among the template's copies (%s)",
				gone.ID, orNone(gone.Datacenter, ""), orNone(gone.Transaction, ""), key)}
	}
	if st == stateRunning {
		w.unknownSince = time.Time{}
		if t.Current.For >= w.wo.noProgress {
			return key, true, &NoProgressError{What: fmt.Sprintf("template %d", w.id), Transaction: t.Current, Bound: w.wo.noProgress, State: key}
		}
		return key, false, nil
	}
	if w.unknownSince.IsZero() {
		w.unknownSince = now
	}
	if d := now.Sub(w.unknownSince); d >= w.wo.unknownBound {
		return key, true, &TemplateStateError{TemplateID: w.id, State: key, For: d}
	}
	return key, false, nil
}

// vanished records the copies of t and returns a copy that earlier polls
// saw and the last two did not, nil when there is none.
func (w *templateWait) vanished(t *Template) *TemplateCopy {
	if w.seenCopies == nil {
		w.seenCopies, w.missing = map[int]TemplateCopy{}, map[int]int{}
	}
	present := map[int]bool{}
	for _, cp := range t.Copies {
		present[cp.ID] = true
		w.seenCopies[cp.ID] = cp
		delete(w.missing, cp.ID)
	}
	for id, cp := range w.seenCopies {
		if present[id] {
			continue
		}
		w.missing[id]++
		if w.missing[id] >= 2 {
			return &cp
		}
	}
	return nil
}

// failedStatus is the status that made Failed true.
func (t *Template) failedStatus() string {
	if failedStatus(t.Status, t.StatusName) {
		return t.Status
	}
	for i := range t.Copies {
		if failedStatus(t.Copies[i].Status, t.Copies[i].StatusName) {
			return t.Copies[i].Status
		}
	}
	return t.Status
}
