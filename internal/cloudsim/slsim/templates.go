package slsim

import (
	"context"
	"encoding/base64"
	"reflect"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/softlayer/softlayer-go/datatypes"

	"github.com/e2eimage/e2eimage/internal/cloudsim/simcore"
	"github.com/e2eimage/e2eimage/secret"
)

// Image template group status key names. SLDN documents the status names
// "Active" (needed to provision) and "Deprecated"
// (SoftLayer_Virtual_Guest_Block_Device_Template_Group_Status); it documents
// no key names and no status for a running or a failed import. A template
// shows "Active" from the start, as softlayer-cli's fixture
// SoftLayer_Virtual_Guest_Block_Device_Template_Group/getObject.json shows a
// parent with only status.name "Active": an import in progress is a
// transaction on the template's child in the import data center. See
// Contract for the provenance of each name.
const (
	// TemplateStatusActive: name "Active" (documented); the key name
	// "ACTIVE" is invented.
	TemplateStatusActive = "ACTIVE"
	// TemplateStatusError: invented. The import failed; status.description
	// holds the reason (one of the Reason* constants, optionally followed
	// by ": detail"). With Config.DeleteFailedImports the template is
	// removed instead.
	TemplateStatusError = "ERROR"
)

type statusDef struct {
	id         int
	name, desc string
}

var templateStatuses = map[string]statusDef{
	TemplateStatusActive: {1, "Active", "The image template is available for provisioning."},
	TemplateStatusError:  {6, "Error", "The image import failed."},
}

// Transaction status names of image template transactions. IBM documents
// none of them (softlayer-python and softlayer-cli only display
// transactionStatus.name and friendlyName); all are invented.
const (
	TxImportQueued   = "IMAGE_IMPORT_QUEUED"
	TxImportAuth     = "IMAGE_IMPORT_AUTHENTICATE"
	TxImportDownload = "IMAGE_IMPORT_READ_OBJECT"
	TxImportVerify   = "IMAGE_IMPORT_VERIFY"
	TxImportKey      = "IMAGE_IMPORT_UNWRAP_KEY"
	TxImportCopy     = "IMAGE_IMPORT_COPY"
	TxCopy           = "IMAGE_COPY_TO_DATACENTER"
	TxExport         = "IMAGE_EXPORT"
	TxDelete         = "IMAGE_DELETE"
)

var txFriendly = map[string]string{
	TxImportQueued:   "Image import queued",
	TxImportAuth:     "Authenticating with IBM Cloud IAM",
	TxImportDownload: "Reading the image from Cloud Object Storage",
	TxImportVerify:   "Verifying the VHD image",
	TxImportKey:      "Unwrapping the data encryption key",
	TxImportCopy:     "Copying the image to the image repository",
	TxCopy:           "Copying the image template to another data center",
	TxExport:         "Exporting the image to Cloud Object Storage",
	TxDelete:         "Deleting the image template",

	TxProvisionSetup:  "Assigning a host",
	TxProvisionDisk:   "Creating the boot disk from the image template",
	TxProvisionConfig: "Writing the cloud-init configuration drive",
	TxProvisionPower:  "Powering on",
}

// transaction is a SoftLayer_Provisioning_Version1_Transaction.
type transaction struct {
	id              int
	name            string
	created, change time.Time
	guestID         int
}

type template struct {
	id        int
	guid      string
	acct      *account
	who       actor
	name      string
	note      string
	created   time.Time
	parentID  int
	children  []int
	status    string
	reason    string
	tx        *transaction
	osCode    string
	cloudInit bool
	byol      bool
	encrypted bool
	crkCRN    string
	uri       string
	src       cosURI
	// apiKey is the import's ibmApiKey, kept (in memory only) so that
	// copyToIcos can read the image back from the source object: the
	// simulator keeps no copy of the image bytes.
	apiKey      *secret.String
	virtualSize int64
	keySize     int
	imageCheck  string // what the import's guest checks found (see checkGuest)
	// imageCheckRead counts the guest-disk bytes those checks fetched.
	imageCheckRead int64
	datacenters    []string // a child's one data center; a parent's are its children's
	blockDevID     int
	ready          bool               // a child whose disks are in place
	cancel         context.CancelFunc // of the running import or export
	seed           []seedDisk         // a seeded template's disks (SeedTemplate); nil for imports
}

func templateService() *service {
	return &service{
		methods: map[string]method{
			"createfromicos": {fn: (*Server).createFromIcos,
				defaultMask: "mask[id,accountId,name,note,createDate,globalIdentifier,statusId,status,transactionId,transaction[transactionStatus],userRecordId]"},
			"copytoicos":                       {fn: (*Server).copyToIcos},
			"deleteobject":                     {fn: (*Server).deleteTemplate},
			"getvhdimportsoftwaredescriptions": {fn: (*Server).vhdImportSoftware},
			"isencrypted":                      {fn: templateFlag(func(t *template) bool { return t.encrypted })},
			"iscloudinit":                      {fn: templateFlag(func(t *template) bool { return t.cloudInit })},
			"isbyol":                           {fn: templateFlag(func(t *template) bool { return t.byol })},
			"getencryptionattributes":          {fn: (*Server).encryptionAttributes},
			"addlocations":                     {fn: (*Server).addLocations},
			"getstoragelocations":              {fn: (*Server).storageLocations},
			"removelocations":                  {fn: notImplemented},
			"setavailablelocations":            {fn: notImplemented},
			"createfromexternalsource":         {fn: notImplemented},
			"copytoexternalsource":             {fn: notImplemented},
			"editobject":                       {fn: notImplemented},
		},
		load:       (*Server).loadTemplate,
		objectType: reflect.TypeOf(datatypes.Virtual_Guest_Block_Device_Template_Group{}),
		needsID:    true,
	}
}

func notImplemented(_ *Server, c *call) (any, error) {
	return nil, errPublic("%s::%s is not implemented by this simulator.", c.service, c.method)
}

// lookupTemplate returns the caller's template by id. Caller holds s.mu.
func (s *Server) lookupTemplate(c *call) (*template, error) {
	return lookupOwned(c, s.templates, func(t *template) *account { return t.acct })
}

// lookupOwned returns the object of c's id from objects when it belongs to
// the caller's account; another account's object is as absent as a missing
// one, as on the real API. Caller holds s.mu.
func lookupOwned[T any](c *call, objects map[int]*T, owner func(*T) *account) (*T, error) {
	id, err := c.needID()
	if err != nil {
		return nil, err
	}
	o, ok := objects[id]
	if !ok || owner(o) != c.acct {
		return nil, errNotFound(id)
	}
	return o, nil
}

func (s *Server) loadTemplate(c *call) (any, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	t, err := s.lookupTemplate(c)
	if err != nil {
		return nil, err
	}
	return s.templateView(t, true), nil
}

func templateFlag(f func(*template) bool) handlerFunc {
	return func(s *Server, c *call) (any, error) {
		s.mu.Lock()
		defer s.mu.Unlock()
		t, err := s.lookupTemplate(c)
		if err != nil {
			return nil, err
		}
		return f(t), nil
	}
}

// encryptionAttributes serves getEncryptionAttributes. IBM does not document
// the values; the simulator returns ["ENCRYPTED", "XTS_AES_128"|"XTS_AES_256"]
// for an encrypted template (the cipher once the import has unwrapped the
// DEK) and [] otherwise.
func (s *Server) encryptionAttributes(c *call) (any, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	t, err := s.lookupTemplate(c)
	if err != nil {
		return nil, err
	}
	out := []string{}
	if t.encrypted {
		out = append(out, "ENCRYPTED")
		switch t.keySize {
		case secret.DEK256:
			out = append(out, "XTS_AES_128")
		case secret.DEK512:
			out = append(out, "XTS_AES_256")
		}
	}
	return out, nil
}

func (s *Server) txView(tx *transaction) *datatypes.Provisioning_Version1_Transaction {
	if tx == nil {
		return nil
	}
	now := s.clock.Now()
	v := &datatypes.Provisioning_Version1_Transaction{
		Id:               ptr(tx.id),
		CreateDate:       slTime(tx.created),
		ModifyDate:       slTime(tx.change),
		StatusChangeDate: slTime(tx.change),
		ElapsedSeconds:   ptr(int(now.Sub(tx.created) / time.Second)),
		TransactionStatus: &datatypes.Provisioning_Version1_Transaction_Status{
			Name:         ptr(tx.name),
			FriendlyName: ptr(txFriendly[tx.name]),
		},
	}
	if tx.guestID != 0 {
		v.GuestId = ptr(tx.guestID)
	}
	return v
}

// templateView builds the full object (every relational property the
// simulator models); masks trim it. A parent shows the data centers of its
// children and, once a child holds the disks, its block devices; a child
// shows its data center, its transaction and, when ready, its block
// devices. Caller holds s.mu.
func (s *Server) templateView(t *template, withChildren bool) datatypes.Virtual_Guest_Block_Device_Template_Group {
	st := templateStatuses[t.status]
	desc := st.desc
	if t.status == TemplateStatusError && t.reason != "" {
		desc = t.reason
	}
	v := datatypes.Virtual_Guest_Block_Device_Template_Group{
		Id:           ptr(t.id),
		AccountId:    ptr(t.acct.id),
		Name:         ptr(t.name),
		CreateDate:   slTime(t.created),
		PublicFlag:   ptr(0),
		StatusId:     ptr(st.id),
		UserRecordId: ptr(t.who.userID),
		Status: &datatypes.Virtual_Guest_Block_Device_Template_Group_Status{
			KeyName: ptr(t.status), Name: ptr(st.name), Description: ptr(desc),
		},
		ByolFlag:         ptr(t.byol),
		FlexImageFlag:    ptr(false),
		NextGenFlag:      ptr(false),
		ImageTypeKeyName: ptr("SYSTEM"),
		ImageType: &datatypes.Virtual_Disk_Image_Type{
			KeyName: ptr("SYSTEM"), Name: ptr("System"), Description: ptr("a disk that may be replaced on upgrade"),
		},
	}
	if t.note != "" {
		v.Note = ptr(t.note)
	}
	if t.tx != nil {
		v.TransactionId = ptr(t.tx.id)
		v.Transaction = s.txView(t.tx)
	}
	gb := datatypes.Float64(float64((t.virtualSize + (1<<30 - 1)) >> 30))
	blockDevices := func(owner *template) {
		if len(owner.seed) > 0 {
			v.BlockDevices = seedBlockDevices(owner, t.osCode)
			total := datatypes.Float64(0)
			for _, d := range v.BlockDevices {
				total += *d.DiskSpace
			}
			v.BlockDevicesDiskSpaceTotal = &total
			return
		}
		v.BlockDevices = []datatypes.Virtual_Guest_Block_Device_Template{{
			Id: ptr(owner.blockDevID), Device: ptr("0"), DiskSpace: &gb, Units: ptr("GB"), GroupId: ptr(owner.id),
		}}
		v.BlockDevicesDiskSpaceTotal = &gb
	}
	if t.parentID != 0 {
		v.ParentId = ptr(t.parentID)
		if len(t.datacenters) == 1 {
			v.Datacenter = s.location(t.datacenters[0])
		}
		if t.ready {
			blockDevices(t)
		}
	} else {
		v.GlobalIdentifier = ptr(t.guid)
		ready := false
		for _, cid := range t.children {
			ch, ok := s.templates[cid]
			if !ok {
				continue
			}
			ready = ready || ch.ready
			for _, dc := range ch.datacenters {
				if l := s.location(dc); l != nil {
					v.Datacenters = append(v.Datacenters, *l)
				}
			}
		}
		if ready {
			blockDevices(t)
		}
	}
	if withChildren {
		for _, cid := range t.children {
			if ch, ok := s.templates[cid]; ok {
				v.Children = append(v.Children, s.templateView(ch, false))
			}
		}
	}
	return v
}

// OS reference codes accepted by createFromIcos: the 64-bit systems the E2E
// documentation supports (../../../docs/CLOUD.md section 7.2) plus the common
// unencrypted-import codes.
type osRef struct {
	code, name, version, maker string
	rhel                       bool
}

var vhdImportOS = []osRef{
	{"CENTOS_STREAM_9_64", "CentOS Stream", "9-64", "CentOS", false},
	{"DEBIAN_11_64", "Debian GNU/Linux", "11.x Bullseye/Stable-64", "Debian", false},
	{"DEBIAN_12_64", "Debian GNU/Linux", "12.x Bookworm/Stable-64", "Debian", false},
	{"REDHAT_8_64", "Red Hat Enterprise Linux", "8.x-64", "Red Hat", true},
	{"REDHAT_9_64", "Red Hat Enterprise Linux", "9.x-64", "Red Hat", true},
	{"UBUNTU_20_64", "Ubuntu", "20.04-LTS-64", "Canonical", false},
	{"UBUNTU_22_64", "Ubuntu", "22.04-LTS-64", "Canonical", false},
	{"UBUNTU_24_64", "Ubuntu", "24.04-LTS-64", "Canonical", false},
	{"WIN_2016-STD_64", "Windows Server", "2016 Standard Edition (64 bit)", "Microsoft", false},
	{"WIN_2019-STD_64", "Windows Server", "2019 Standard Edition (64 bit)", "Microsoft", false},
	{"WIN_2022-STD_64", "Windows Server", "2022 Standard Edition (64 bit)", "Microsoft", false},
}

func findOS(code string) (osRef, bool) {
	for _, o := range vhdImportOS {
		if o.code == code {
			return o, true
		}
	}
	return osRef{}, false
}

func (s *Server) vhdImportSoftware(*call) (any, error) {
	out := make([]datatypes.Software_Description, 0, len(vhdImportOS))
	for i, o := range vhdImportOS {
		out = append(out, datatypes.Software_Description{
			Id: ptr(4100 + i), Name: ptr(o.name), Version: ptr(o.version), ReferenceCode: ptr(o.code),
			Manufacturer: ptr(o.maker), LongDescription: ptr(o.name + " " + o.version),
			OperatingSystem: ptr(1), ControlPanel: ptr(0), VirtualLicense: ptr(0), VirtualizationPlatform: ptr(0),
			RequiredUser: ptr(map[bool]string{true: "Administrator", false: "root"}[strings.HasPrefix(o.code, "WIN")]),
		})
	}
	return out, nil
}

// cosURI is a parsed cos://<region>/<bucket>/<object> URI.
type cosURI struct {
	region, bucket, key string
}

func (u cosURI) String() string { return "cos://" + u.region + "/" + u.bucket + "/" + u.key }

var (
	regionRE = regexp.MustCompile(`^[a-z]{2,}(-[a-z]+)?[0-9]{0,2}$`)
	// bucketRE: COS bucket names are 3-63 characters of lower-case letters,
	// digits, dots and hyphens, starting and ending with a letter or digit.
	bucketRE = regexp.MustCompile(`^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$`)
)

func parseCOSURI(uri string) (cosURI, error) {
	rest, ok := strings.CutPrefix(uri, "cos://")
	if !ok {
		if strings.HasPrefix(uri, "swift://") {
			return cosURI{}, errInvalid("Swift URIs are for createFromExternalSource; createFromIcos needs cos://<region>/<bucket>/<object>.")
		}
		return cosURI{}, errInvalid("The uri %q is not of the form cos://<region>/<bucket>/<object>.", uri)
	}
	region, rest, ok1 := strings.Cut(rest, "/")
	bucket, key, ok2 := strings.Cut(rest, "/")
	if !ok1 || !ok2 || region == "" || key == "" {
		return cosURI{}, errInvalid("The uri %q is not of the form cos://<region>/<bucket>/<object>.", uri)
	}
	if !regionRE.MatchString(region) {
		return cosURI{}, errInvalid("The uri %q names an invalid region %q.", uri, region)
	}
	if !bucketRE.MatchString(bucket) {
		return cosURI{}, errInvalid("The uri %q names an invalid bucket %q.", uri, bucket)
	}
	return cosURI{region: region, bucket: bucket, key: key}, nil
}

// keyCRN is a parsed root key CRN:
// crn:v1:bluemix:public:<kms|hs-crypto>:<region>:a/<account>:<instance>:key:<key id>
type keyCRN struct {
	raw, service, region, account, instance, keyID string
}

func parseKeyCRN(crn string) (keyCRN, error) {
	f := strings.Split(crn, ":")
	bad := errInvalid("crkCrn %q is not a root key CRN (crn:v1:bluemix:public:kms|hs-crypto:<region>:a/<account>:<instance>:key:<id>).", crn)
	if len(f) != 10 || f[0] != "crn" || f[1] != "v1" || f[7] == "" || f[8] != "key" || f[9] == "" {
		return keyCRN{}, bad
	}
	if f[4] != "kms" && f[4] != "hs-crypto" {
		return keyCRN{}, errInvalid("crkCrn %q names service %q; the root key must be in Key Protect (kms) or Hyper Protect Crypto Services (hs-crypto).", crn, f[4])
	}
	acct, ok := strings.CutPrefix(f[6], "a/")
	if !ok || acct == "" || f[5] == "" {
		return keyCRN{}, bad
	}
	return keyCRN{raw: crn, service: f[4], region: f[5], account: acct, instance: f[7], keyID: f[9]}, nil
}

// importRequest is a validated createFromIcos configuration.
type importRequest struct {
	name, note, osCode string
	uri                cosURI
	apiKey             *secret.String
	encrypted          bool
	cloudInit, byol    bool
	crk                keyCRN
	wrappedDEK         string
}

func deref[T any](p *T) T {
	var zero T
	if p == nil {
		return zero
	}
	return *p
}

// validateImport performs the checks the real API makes before it accepts
// an import.
func validateImport(cfg *datatypes.Container_Virtual_Guest_Block_Device_Template_Configuration) (*importRequest, error) {
	req := &importRequest{name: strings.TrimSpace(deref(cfg.Name)), note: deref(cfg.Note)}
	if req.name == "" {
		return nil, errPublic("Property 'name' is required to import an image.")
	}
	if len(req.name) > 255 {
		return nil, errInvalid("The image name must be at most 255 characters.")
	}
	uri := deref(cfg.Uri)
	if uri == "" {
		return nil, errPublic("Property 'uri' is required to import an image (cos://<region>/<bucket>/<object>).")
	}
	u, err := parseCOSURI(uri)
	if err != nil {
		return nil, err
	}
	req.uri = u
	if !strings.HasSuffix(strings.ToLower(u.key), ".vhd") {
		return nil, errInvalid("The object %q is not a VHD image: the object name must end in .vhd (IBM's example name for an import is filename.vhd-0.vhd). This simulator imports VHD images only.", u.key)
	}
	key := deref(cfg.IbmApiKey)
	if key == "" {
		if deref(cfg.IbmAccessKey) != "" || deref(cfg.IbmSecretKey) != "" {
			return nil, errPublic("HMAC credentials (ibmAccessKey/ibmSecretKey) are not supported by this simulator; pass ibmApiKey.")
		}
		return nil, errPublic("Property 'ibmApiKey' is required to import an image from IBM Cloud Object Storage.")
	}
	crk, wdek := strings.TrimSpace(deref(cfg.CrkCrn)), strings.TrimSpace(deref(cfg.WrappedDek))
	switch {
	case cfg.IsEncrypted != nil:
		req.encrypted = *cfg.IsEncrypted
	case crk != "" || wdek != "":
		// isEncrypted is "not a required data type" since 2019-06 (SLDN
		// release notes, ../../../docs/CLOUD.md 5.1). Inferred: without
		// it, a root key CRN and a wrapped DEK make the import an
		// encrypted one (the note does not say what the default is).
		req.encrypted = true
	}
	if !req.encrypted && (crk != "" || wdek != "") {
		return nil, errInvalid("crkCrn and wrappedDek are only valid for an encrypted import (isEncrypted true).")
	}
	if req.encrypted {
		if crk == "" {
			return nil, errPublic("Property 'crkCrn' (the root key CRN) is required to import an encrypted image.")
		}
		if wdek == "" {
			return nil, errPublic("Property 'wrappedDek' is required to import an encrypted image.")
		}
		k, err := parseKeyCRN(crk)
		if err != nil {
			return nil, err
		}
		if _, err := base64.StdEncoding.DecodeString(wdek); err != nil {
			return nil, errInvalid("wrappedDek is not base64 (it must be the ciphertext returned by a Key Protect or HPCS wrap).")
		}
		req.crk, req.wrappedDEK = k, wdek
	}
	req.osCode = deref(cfg.OperatingSystemReferenceCode)
	if req.osCode == "" {
		return nil, errPublic("Property 'operatingSystemReferenceCode' is required to import a VHD image; see getVhdImportSoftwareDescriptions.")
	}
	osr, ok := findOS(req.osCode)
	if !ok {
		return nil, errInvalid("Operating system reference code %q is not supported for VHD import; see getVhdImportSoftwareDescriptions.", req.osCode)
	}
	req.cloudInit = deref(cfg.CloudInit)
	req.byol = deref(cfg.Byol)
	if req.encrypted {
		// Invented as an API rule: IBM documents that an encrypted image
		// "must be cloud-init enabled" and that the console's import form
		// selects Cloud-init (and, for Red Hat, Your license) and locks it
		// (../../../docs/CLOUD.md 7.2); what the API does with
		// cloudInit:false is not documented. The simulator forces both on.
		req.cloudInit = true
		if osr.rhel {
			req.byol = true
		}
	}
	req.apiKey = secret.NewString(key)
	return req, nil
}

// createFromIcos accepts an import and starts its transaction.
func (s *Server) createFromIcos(c *call) (any, error) {
	var cfg datatypes.Container_Virtual_Guest_Block_Device_Template_Configuration
	ok, err := c.param(0, &cfg)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, errPublic("createFromIcos needs a SoftLayer_Container_Virtual_Guest_Block_Device_Template_Configuration parameter.")
	}
	req, err := validateImport(&cfg)
	if err != nil {
		return nil, err
	}
	dc, ok := s.cfg.ImportDatacenters[req.uri.region]
	if !ok {
		req.apiKey.Zero()
		return nil, errInvalid("Images cannot be imported from region %q; the import locations are %s.", req.uri.region, s.importRegions())
	}
	who := c.actor()
	now := s.clock.Now()

	s.mu.Lock()
	s.ids.template++
	t := &template{
		id: s.ids.template, guid: newGUID(), acct: c.acct, who: who, name: req.name, note: req.note,
		created: now, status: TemplateStatusActive, osCode: req.osCode, cloudInit: req.cloudInit,
		byol: req.byol, encrypted: req.encrypted, crkCRN: req.crk.raw, uri: req.uri.String(), src: req.uri,
		apiKey: req.apiKey,
	}
	// The import runs as a transaction on the child in the import data
	// center; the parent shows Active throughout (see Contract).
	ch := s.newChild(t, dc)
	ch.tx = &transaction{id: s.nextTx(), name: TxImportQueued, created: now, change: now}
	ctx, cancel := context.WithCancel(s.ctx)
	t.cancel = cancel
	job := &importJob{templateID: t.id, acct: c.acct, who: who, req: req}
	if !s.goBackground(ctx, func(ctx context.Context) { s.runImport(ctx, job) }) {
		s.mu.Unlock()
		cancel()
		return nil, errPublic("The service is shutting down.")
	}
	s.templates[t.id] = t
	s.templates[ch.id] = ch
	meta := map[string]any{"uri": t.uri, "operatingSystemReferenceCode": t.osCode, "isEncrypted": t.encrypted,
		"cloudInit": t.cloudInit, "byol": t.byol, "globalIdentifier": t.guid}
	if t.encrypted {
		meta["crkCrn"] = t.crkCRN
	}
	s.logEvent(c.acct, who, false, ObjectImage, t.id, EventImportStarted, t.name, meta)
	ev := s.auditEvent(c.acct, who, ActionTemplateCreate, simcore.OutcomePending, "image-template", t.id, t.name, 202, "",
		map[string]any{"uri": t.uri, "isEncrypted": t.encrypted, "crkCrn": t.crkCRN, "operatingSystemReferenceCode": t.osCode},
		map[string]any{"id": t.id, "globalIdentifier": t.guid})
	view := s.templateView(t, true)
	s.mu.Unlock()
	s.emit(ev)
	s.log.Info("slsim: image import accepted", "template", t.id, "uri", t.uri, "encrypted", t.encrypted)
	return view, nil
}

// deleteTemplate serves deleteObject: it cancels a running import or export,
// removes the template and its children, and returns the deletion
// transaction.
func (s *Server) deleteTemplate(c *call) (any, error) {
	s.mu.Lock()
	t, err := s.lookupTemplate(c)
	if err != nil {
		s.mu.Unlock()
		return nil, err
	}
	if t.cancel != nil {
		t.cancel()
	}
	now := s.clock.Now()
	tx := &transaction{id: s.nextTx(), name: TxDelete, created: now, change: now}
	ids := append([]int{t.id}, t.children...)
	if t.parentID != 0 {
		if p, ok := s.templates[t.parentID]; ok {
			p.children = removeInt(p.children, t.id)
		}
	}
	for _, id := range ids {
		delete(s.templates, id)
	}
	if t.cancel == nil && t.parentID == 0 {
		// No transaction uses the key any more (a running one zeroes it
		// itself when it sees the cancellation).
		t.apiKey.Zero()
	}
	who := c.actor()
	s.logEvent(c.acct, who, false, ObjectImage, t.id, EventImageDelete, t.name, nil)
	ev := s.auditEvent(c.acct, who, ActionTemplateDelete, simcore.OutcomeSuccess, "image-template", t.id, t.name, 200, "", nil, nil)
	view := *s.txView(tx)
	s.mu.Unlock()
	s.emit(ev)
	return view, nil
}

func removeInt(s []int, v int) []int {
	out := s[:0]
	for _, x := range s {
		if x != v {
			out = append(out, x)
		}
	}
	return out
}

// accountTemplates returns the caller's parent template groups by id.
func (s *Server) accountTemplates(acct *account) []datatypes.Virtual_Guest_Block_Device_Template_Group {
	s.mu.Lock()
	defer s.mu.Unlock()
	var ids []int
	for id, t := range s.templates {
		if t.acct == acct && t.parentID == 0 {
			ids = append(ids, id)
		}
	}
	sort.Ints(ids)
	out := make([]datatypes.Virtual_Guest_Block_Device_Template_Group, 0, len(ids))
	for _, id := range ids {
		out = append(out, s.templateView(s.templates[id], true))
	}
	return out
}

// setTemplateTx moves the import's transaction, which runs on the
// template's import child (its first child), to a new status. It reports
// false when the template is gone (deleted).
func (s *Server) setTemplateTx(id int, name string) bool {
	defer s.signal() // after the unlock below
	s.mu.Lock()
	defer s.mu.Unlock()
	t, ok := s.templates[id]
	if !ok {
		return false
	}
	if ch := s.importChild(t); ch != nil {
		t = ch
	}
	now := s.clock.Now()
	if t.tx == nil {
		t.tx = &transaction{id: s.nextTx(), created: now}
	}
	t.tx.name, t.tx.change = name, now
	return true
}

// newChild makes a child group of parent t in data center dc and links it.
// Caller holds s.mu and adds it to s.templates.
func (s *Server) newChild(t *template, dc string) *template {
	s.ids.template++
	s.ids.blockDevice++
	ch := &template{
		id: s.ids.template, acct: t.acct, who: t.who, name: t.name, note: t.note,
		created: s.clock.Now(), parentID: t.id, status: TemplateStatusActive, osCode: t.osCode,
		cloudInit: t.cloudInit, byol: t.byol, encrypted: t.encrypted, crkCRN: t.crkCRN, uri: t.uri,
		src: t.src, virtualSize: t.virtualSize, keySize: t.keySize, datacenters: []string{dc},
		blockDevID: s.ids.blockDevice,
	}
	t.children = append(t.children, ch.id)
	return ch
}

// importChild returns the child an import of t runs on: its first child.
// Caller holds s.mu.
func (s *Server) importChild(t *template) *template {
	if t.parentID != 0 || len(t.children) == 0 {
		return nil
	}
	return s.templates[t.children[0]]
}

// childIn returns t's child in data center dc. Caller holds s.mu.
func (s *Server) childIn(t *template, dc string) *template {
	for _, cid := range t.children {
		if ch, ok := s.templates[cid]; ok && len(ch.datacenters) == 1 && ch.datacenters[0] == dc {
			return ch
		}
	}
	return nil
}
