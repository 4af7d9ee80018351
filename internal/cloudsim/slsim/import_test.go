package slsim_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/softlayer/softlayer-go/datatypes"
	"github.com/softlayer/softlayer-go/filter"
	"github.com/softlayer/softlayer-go/services"
	"github.com/softlayer/softlayer-go/sl"
	"github.com/stretchr/testify/require"

	"github.com/e2eimage/e2eimage/internal/cloudsim/simcore"
	"github.com/e2eimage/e2eimage/internal/cloudsim/slsim"
	"github.com/e2eimage/e2eimage/vhd"
)

// fast makes imports and provisioning take milliseconds of real time.
const fast = 1e5

type importSpec struct {
	name, uri, apiKey, os string
	crk, wdek             string
	encrypted             *bool
}

func (w *world) createImport(t *testing.T, s importSpec) int {
	t.Helper()
	if s.apiKey == "" {
		s.apiKey = importKey
	}
	if s.os == "" {
		s.os = "UBUNTU_22_64"
	}
	if s.name == "" {
		s.name = "img"
	}
	cfg := &datatypes.Container_Virtual_Guest_Block_Device_Template_Configuration{
		Name: sl.String(s.name), Uri: sl.String(s.uri), IbmApiKey: sl.String(s.apiKey),
		OperatingSystemReferenceCode: sl.String(s.os), IsEncrypted: s.encrypted,
	}
	if s.crk != "" {
		cfg.CrkCrn, cfg.WrappedDek = sl.String(s.crk), sl.String(s.wdek)
		if cfg.IsEncrypted == nil {
			cfg.IsEncrypted = sl.Bool(true)
		}
	}
	g, err := services.GetVirtualGuestBlockDeviceTemplateGroupService(w.sess).CreateFromIcos(cfg)
	require.NoError(t, err)
	require.Equal(t, "Active", *g.Status.Name, "the parent says Active while the import runs on its child")
	return *g.Id
}

const waitMask = "mask[id,name,globalIdentifier,status,transaction[transactionStatus],datacenters,blockDevices,children[id,parentId,transactionId,datacenter,blockDevices,status]]"

// waitImport polls getObject the way a client does until the import has
// ended (see importEnded).
func (w *world) waitImport(t *testing.T, id int) datatypes.Virtual_Guest_Block_Device_Template_Group {
	t.Helper()
	svc := services.GetVirtualGuestBlockDeviceTemplateGroupService(w.sess)
	var g datatypes.Virtual_Guest_Block_Device_Template_Group
	waitFor(t, w.srv, "the import to finish", func() bool {
		var err error
		g, err = svc.Id(id).Mask(waitMask).GetObject()
		require.NoError(t, err)
		return importEnded(g)
	})
	return g
}

// importEnded reports whether an import has ended: failed (the simulator's
// ERROR status), or no transaction on any child and a child with block
// devices.
func importEnded(g datatypes.Virtual_Guest_Block_Device_Template_Group) bool {
	if g.Status != nil && g.Status.KeyName != nil && *g.Status.KeyName == slsim.TemplateStatusError {
		return true
	}
	ready := false
	for _, ch := range g.Children {
		if ch.TransactionId != nil {
			return false
		}
		ready = ready || len(ch.BlockDevices) > 0
	}
	return ready
}

func TestImportUnencrypted(t *testing.T) {
	t.Parallel()
	w := newWorld(t, fast)
	w.s3.put("images", "web.vhd-0.vhd", makeVHD(t, linuxDisk(t), nil))
	id := w.createImport(t, importSpec{name: "web", uri: "cos://us-south/images/web.vhd-0.vhd"})
	g := w.waitImport(t, id)

	require.Equal(t, "ACTIVE", *g.Status.KeyName)
	require.Equal(t, "Active", *g.Status.Name)
	require.Nil(t, g.Transaction)
	require.Len(t, g.Datacenters, 1, "an import lands in its region's import data center only")
	require.Equal(t, "dal13", *g.Datacenters[0].Name)
	require.Len(t, g.BlockDevices, 1)
	require.Equal(t, datatypes.Float64(1), *g.BlockDevices[0].DiskSpace, "a 3 MiB disk rounds up to 1 GB")
	require.Len(t, g.Children, 1)
	for _, ch := range g.Children {
		require.Equal(t, id, *ch.ParentId)
		require.NotNil(t, ch.Datacenter)
		require.Len(t, ch.BlockDevices, 1)
		require.Equal(t, "ACTIVE", *ch.Status.KeyName)
	}
	// Children are reachable by id but not listed as account templates.
	ch, err := services.GetVirtualGuestBlockDeviceTemplateGroupService(w.sess).Id(*g.Children[0].Id).Mask("datacenter.name").GetObject()
	require.NoError(t, err)
	require.Equal(t, "dal13", *ch.Datacenter.Name)
	list, err := services.GetAccountService(w.sess).GetPrivateBlockDeviceTemplateGroups()
	require.NoError(t, err)
	require.Len(t, list, 1)

	names := eventNames(t, w, slsim.ObjectImage)
	require.Equal(t, []string{slsim.EventImportStarted, slsim.EventImportComplete}, names)
	at := w.sink.all()
	require.Len(t, at, 2)
	require.Equal(t, slsim.ActionTemplateCreate, at[0].Action)
	require.Equal(t, simcore.OutcomePending, at[0].Outcome)
	require.Equal(t, simcore.OutcomeSuccess, at[1].Outcome)
	require.Equal(t, "crn:v1:bluemix:public:audit-log:us-south:a/"+testAccount+"::image-template:"+itoa(id), at[1].Target.ID)
	require.Equal(t, "IBMid-2700000001", at[1].Initiator.ID, "the SoftLayer caller (owner) initiated the import")
	require.Equal(t, "apikey", at[0].Initiator.Credential.Type)
}

func itoa(i int) string { b, _ := json.Marshal(i); return string(b) }

func eventNames(t *testing.T, w *world, objectName string) []string {
	t.Helper()
	logs, err := services.GetEventLogService(w.sess).Filter(filter.Build(filter.Path("objectName").Eq(objectName))).GetAllObjects()
	require.NoError(t, err)
	var out []string
	for _, l := range logs {
		out = append(out, *l.EventName)
	}
	return out
}

func TestImportEncrypted(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, service, instance, table string
		dekLen                         int
		attr                           string
	}{
		{"key protect, 32-byte DEK, MBR", "kms", kpInstance, "mbr", 32, "XTS_AES_128"},
		{"hpcs, 64-byte DEK, GPT", "hs-crypto", hpInstance, "gpt", 64, "XTS_AES_256"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := newWorld(t, fast)
			kms := w.kms
			if tc.service == "hs-crypto" {
				kms = w.hpcs
			}
			kms.addKey(t, "root-1")
			dek := randomDEK(tc.dekLen)
			raw := linuxDisk(t)
			if tc.table == "gpt" {
				raw = diskOf(t, "gpt", "ext4", rhelTree())
			}
			w.s3.put("images", "enc.vhd-0.vhd", makeVHD(t, raw, dek))
			id := w.createImport(t, importSpec{
				uri: "cos://us-south/images/enc.vhd-0.vhd", os: "REDHAT_9_64",
				crk: w.keyCRN(tc.service, tc.instance, "root-1"), wdek: kms.wrap(t, "root-1", dek),
			})
			g := w.waitImport(t, id)
			require.Equal(t, "ACTIVE", *g.Status.KeyName, "reason: %s", deref(g.Status.Description))
			require.Equal(t, int64(1), kms.unwraps.Load())

			svc := services.GetVirtualGuestBlockDeviceTemplateGroupService(w.sess).Id(id)
			attrs, err := svc.GetEncryptionAttributes()
			require.NoError(t, err)
			require.Equal(t, []string{"ENCRYPTED", tc.attr}, attrs)
			byol, err := svc.IsByol()
			require.NoError(t, err)
			require.True(t, byol, "BYOL is forced on for encrypted RHEL")
			ti := w.srv.Templates()[0]
			require.Equal(t, tc.dekLen, ti.KeySize)
			require.Equal(t, int64(len(raw)), ti.VirtualSize)
		})
	}
}

func deref(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}

// TestImportFailures drives each check of the backplane to its failure and
// checks the reason surfaces in the status, the event log, Activity Tracker
// and a later order.
func TestImportFailures(t *testing.T) {
	t.Parallel()
	w := newWorld(t, fast)
	w.kms.addKey(t, "root-1")
	w.kms.addKey(t, "root-2")
	w.kms.addKey(t, "suspended")
	w.kms.setState("suspended", 2)
	w.kms.addKey(t, "destroyed")
	w.kms.setState("destroyed", 5)
	crk := func(id string) string { return w.keyCRN("kms", kpInstance, id) }

	dek := randomDEK(32)
	encImg := makeVHD(t, linuxDisk(t), dek)
	plainImg := makeVHD(t, linuxDisk(t), nil)
	w.s3.put("images", "enc.vhd", encImg)
	w.s3.put("images", "plain.vhd", plainImg)
	w.s3.put("images", "raw.vhd", linuxDisk(t)[:1<<20])
	w.s3.put("images", "notable.vhd", makeVHD(t, noTableDisk(2<<20), nil))
	w.s3.put("images", "enc-notable.vhd", makeVHD(t, noTableDisk(2<<20), dek))
	w.s3.put("images", "huge.vhd", plainImg)
	w.s3.headSize["images/huge.vhd"] = slsim.MaxImportObjectSize + 1
	w.s3.put("cross", "img.vhd", plainImg)
	w.s3.put("single", "img.vhd", plainImg)
	w.s3.put("frankfurt", "img.vhd", encImg)
	var big bytes.Buffer
	bigLayout := &vhd.Layout{Size: slsim.MaxImportDiskSize + 1<<30, Allocated: make([]vhd.Bitmap, vhd.NumBlocks(slsim.MaxImportDiskSize+1<<30))}
	bw, err := vhd.NewWriter(&big, bigLayout)
	require.NoError(t, err)
	require.NoError(t, bw.Close())
	w.s3.put("images", "bigdisk.vhd", big.Bytes())
	w.authz.revoke(testAccount, "server-protect", "hs-crypto", hpInstance)
	w.hpcs.addKey(t, "hp-1")

	wrapped := w.kms.wrap(t, "root-1", dek)
	short := w.kms.wrap(t, "root-1", randomDEK(16))
	cases := []struct {
		name   string
		spec   importSpec
		reason string
	}{
		{"unknown api key", importSpec{uri: "cos://us-south/images/plain.vhd", apiKey: "nobody-knows-this-key"}, slsim.ReasonInvalidAPIKey},
		{"no COS access", importSpec{uri: "cos://us-south/images/plain.vhd", apiKey: noCOSKey}, slsim.ReasonCOSAccessDenied},
		{"no bucket", importSpec{uri: "cos://us-south/nobucket/plain.vhd"}, slsim.ReasonBucketNotFound},
		{"no object", importSpec{uri: "cos://us-south/images/missing.vhd"}, slsim.ReasonObjectNotFound},
		{"cross-region bucket", importSpec{uri: "cos://us-south/cross/img.vhd"}, slsim.ReasonBucketNotRegional},
		{"single-site bucket", importSpec{uri: "cos://us-south/single/img.vhd"}, slsim.ReasonBucketNotRegional},
		{"bucket elsewhere", importSpec{uri: "cos://us-south/frankfurt/img.vhd"}, slsim.ReasonBucketRegion},
		{"bucket not in key region", importSpec{uri: "cos://eu-de/frankfurt/img.vhd", crk: crk("root-1"), wdek: wrapped}, slsim.ReasonBucketKeyRegion},
		{"object too large", importSpec{uri: "cos://us-south/images/huge.vhd"}, slsim.ReasonObjectTooLarge},
		{"raw image", importSpec{uri: "cos://us-south/images/raw.vhd"}, slsim.ReasonNotVHD},
		{"disk too large", importSpec{uri: "cos://us-south/images/bigdisk.vhd"}, slsim.ReasonDiskTooLarge},
		{"plain image, encrypted import", importSpec{uri: "cos://us-south/images/plain.vhd", crk: crk("root-1"), wdek: wrapped}, slsim.ReasonNotEncrypted},
		{"encrypted image, plain import", importSpec{uri: "cos://us-south/images/enc.vhd"}, slsim.ReasonUnexpectedlyEncrypted},
		{"no s2s authorization", importSpec{uri: "cos://us-south/images/enc.vhd", crk: w.keyCRN("hs-crypto", hpInstance, "hp-1"), wdek: wrapped}, slsim.ReasonNoAuthorization + " hs-crypto"},
		{"suspended key", importSpec{uri: "cos://us-south/images/enc.vhd", crk: crk("suspended"), wdek: wrapped}, slsim.ReasonKeyNotActive},
		{"destroyed key", importSpec{uri: "cos://us-south/images/enc.vhd", crk: crk("destroyed"), wdek: wrapped}, slsim.ReasonKeyDeleted},
		{"unknown key", importSpec{uri: "cos://us-south/images/enc.vhd", crk: crk("nope"), wdek: wrapped}, slsim.ReasonKeyNotFound},
		{"wdek of another root key", importSpec{uri: "cos://us-south/images/enc.vhd", crk: crk("root-2"), wdek: wrapped}, slsim.ReasonUnwrapFailed},
		{"wrong DEK", importSpec{uri: "cos://us-south/images/enc.vhd", crk: crk("root-1"), wdek: w.kms.wrap(t, "root-1", randomDEK(32))}, slsim.ReasonDEKMismatch},
		{"16-byte DEK", importSpec{uri: "cos://us-south/images/enc.vhd", crk: crk("root-1"), wdek: short}, slsim.ReasonBadDEKSize},
		{"no partition table", importSpec{uri: "cos://us-south/images/notable.vhd"}, slsim.ReasonNoPartitionTable},
		{"no partition table after decryption", importSpec{uri: "cos://us-south/images/enc-notable.vhd", crk: crk("root-1"), wdek: wrapped}, slsim.ReasonNoPartitionTable},
	}
	ids := make([]int, len(cases))
	for i, tc := range cases {
		tc.spec.name = "case-" + itoa(i)
		ids[i] = w.createImport(t, tc.spec)
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			g := w.waitImport(t, ids[i])
			require.Equal(t, "ERROR", *g.Status.KeyName)
			require.Equal(t, "Error", *g.Status.Name)
			desc := deref(g.Status.Description)
			require.True(t, strings.HasPrefix(desc, tc.reason), "reason %q, want prefix %q", desc, tc.reason)
			require.Nil(t, g.Transaction)
			require.Len(t, g.Children, 1, "the child in the import data center stays, without disks")
			require.Nil(t, g.Children[0].TransactionId)
			require.Empty(t, g.Children[0].BlockDevices)
			for _, secretish := range []string{importKey, noCOSKey, "tok-"} {
				require.NotContains(t, desc, secretish)
			}

			// The event log says why.
			logs, err := services.GetEventLogService(w.sess).Filter(filter.Build(
				filter.Path("objectId").Eq(ids[i]), filter.Path("eventName").Eq(slsim.EventImportFailed))).GetAllObjects()
			require.NoError(t, err)
			require.Len(t, logs, 1)
			var meta map[string]any
			require.NoError(t, json.Unmarshal([]byte(*logs[0].MetaData), &meta))
			require.Equal(t, desc, meta["reason"])
			require.Equal(t, "SYSTEM", *logs[0].UserType)

			// So does Activity Tracker.
			var failure *simcore.Event
			for _, e := range w.sink.all() {
				if e.Outcome == simcore.OutcomeFailure && strings.HasSuffix(e.Target.ID, ":image-template:"+itoa(ids[i])) {
					failure = &e
				}
			}
			require.NotNil(t, failure)
			require.Equal(t, desc, failure.Reason.ReasonForFailure)
			require.Equal(t, slsim.ActionTemplateCreate, failure.Action)
		})
	}

	// An order from a failed template is refused with the reason.
	gl, err := services.GetVirtualGuestBlockDeviceTemplateGroupService(w.sess).Id(ids[0]).GetGlobalIdentifier()
	require.NoError(t, err)
	_, err = services.GetVirtualGuestService(w.sess).CreateObject(guestTemplate(gl))
	e := requireSLError(t, err, http.StatusInternalServerError, "SoftLayer_Exception_Public")
	require.Contains(t, e.Message, "not Active")
	require.Contains(t, e.Message, slsim.ReasonInvalidAPIKey)
}

func TestImportReadsOnlyWhatItVerifies(t *testing.T) {
	t.Parallel()
	w := newWorld(t, fast)
	w.kms.addKey(t, "root-1")
	dek := randomDEK(64)
	img := makeVHD(t, linuxDisk(t), dek)
	w.s3.put("images", "big.vhd", img)
	id := w.createImport(t, importSpec{uri: "cos://us-south/images/big.vhd", crk: w.keyCRN("kms", kpInstance, "root-1"), wdek: w.kms.wrap(t, "root-1", dek)})
	g := w.waitImport(t, id)
	require.Equal(t, "ACTIVE", *g.Status.KeyName, deref(g.Status.Description))
	t.Logf("verification read %d of the image's %d bytes", w.s3.served.Load(), len(img))
	require.Zero(t, w.s3.fullReads.Load(), "the image must be read with ranged GETs")
	require.Less(t, w.s3.served.Load(), int64(256<<10), "read %d of %d bytes", w.s3.served.Load(), len(img))
}

func TestImportTransactionProgressAndDelete(t *testing.T) {
	t.Parallel()
	w := newWorld(t, 1) // the copy phase lasts 10 real minutes
	w.s3.put("images", "web.vhd", makeVHD(t, linuxDisk(t), nil))
	id := w.createImport(t, importSpec{uri: "cos://us-south/images/web.vhd"})
	parent := services.GetVirtualGuestBlockDeviceTemplateGroupService(w.sess).Id(id)
	children, err := parent.GetChildren()
	require.NoError(t, err)
	require.Len(t, children, 1)
	// The import's transaction runs on the child.
	svc := services.GetVirtualGuestBlockDeviceTemplateGroupService(w.sess).Id(*children[0].Id)
	waitFor(t, w.srv, "the copy phase", func() bool {
		tx, err := svc.Mask("transactionStatus").GetTransaction()
		require.NoError(t, err)
		return tx.TransactionStatus != nil && *tx.TransactionStatus.Name == slsim.TxImportCopy
	})
	tx, err := svc.GetTransaction()
	require.NoError(t, err)
	require.NotNil(t, tx.Id)
	require.Nil(t, tx.TransactionStatus, "relational properties need a mask")
	tx, err = svc.Mask("transactionStatus").GetTransaction()
	require.NoError(t, err)
	require.Equal(t, "Copying the image to the image repository", *tx.TransactionStatus.FriendlyName)

	// Ordering from it fails: its image is still being imported, though
	// the parent says Active.
	gl, err := parent.GetGlobalIdentifier()
	require.NoError(t, err)
	_, err = services.GetVirtualGuestService(w.sess).CreateObject(guestTemplate(gl))
	e := requireSLError(t, err, http.StatusInternalServerError, "SoftLayer_Exception_Public")
	require.Contains(t, e.Message, "active transaction in dal13")

	_, err = parent.DeleteObject()
	require.NoError(t, err)
	require.Empty(t, w.srv.Templates())
}

func TestCloseStopsBackgroundWork(t *testing.T) {
	t.Parallel()
	w := newWorld(t, 1)
	w.s3.put("images", "web.vhd", makeVHD(t, linuxDisk(t), nil))
	for i := 0; i < 3; i++ {
		w.createImport(t, importSpec{uri: "cos://us-south/images/web.vhd"})
	}
	start := time.Now()
	w.srv.Close()
	// The imports would take 10 real minutes to finish.
	require.Less(t, time.Since(start), time.Minute)
	for _, ti := range w.srv.Templates() {
		if ti.ParentID != 0 {
			require.False(t, ti.Ready, "no import finished")
			require.NotEmpty(t, ti.Transaction, "the import was still running on the child")
		}
	}
	// After Close nothing new starts.
	_, err := services.GetVirtualGuestBlockDeviceTemplateGroupService(w.sess).CreateFromIcos(&datatypes.Container_Virtual_Guest_Block_Device_Template_Configuration{
		Name: sl.String("late"), Uri: sl.String("cos://us-south/images/web.vhd"), IbmApiKey: sl.String(importKey),
		OperatingSystemReferenceCode: sl.String("UBUNTU_22_64"),
	})
	requireSLError(t, err, http.StatusInternalServerError, "SoftLayer_Exception_Public")
}

func TestExportToIcos(t *testing.T) {
	t.Parallel()
	w := newWorld(t, fast)
	img := makeVHD(t, linuxDisk(t), nil)
	w.s3.put("images", "web.vhd", img)
	id := w.createImport(t, importSpec{uri: "cos://us-south/images/web.vhd"})
	require.Equal(t, "ACTIVE", *w.waitImport(t, id).Status.KeyName)

	svc := services.GetVirtualGuestBlockDeviceTemplateGroupService(w.sess).Id(id)
	ok, err := svc.CopyToIcos(&datatypes.Container_Virtual_Guest_Block_Device_Template_Configuration{
		Uri: sl.String("cos://us-south/exports/web-copy.vhd"), IbmApiKey: sl.String(ownerKey),
	})
	require.NoError(t, err)
	require.True(t, ok)
	waitFor(t, w.srv, "the export", func() bool {
		_, ok := w.s3.get("exports", "web-copy-0.vhd")
		return ok
	})
	got, _ := w.s3.get("exports", "web-copy-0.vhd")
	require.Equal(t, img, got, "IBM: a file named image.vhd is exported as image-0.vhd")
	waitFor(t, w.srv, "the export event", func() bool {
		n := eventNames(t, w, slsim.ObjectImage)
		return n[len(n)-1] == slsim.EventExportComplete
	})

	// Encrypted templates are exported too (IBM allows it); the simulator
	// writes the encrypted object it imported.
	w.kms.addKey(t, "root-1")
	dek := randomDEK(32)
	w.s3.put("images", "enc.vhd", makeVHD(t, linuxDisk(t), dek))
	eid := w.createImport(t, importSpec{uri: "cos://us-south/images/enc.vhd", crk: w.keyCRN("kms", kpInstance, "root-1"), wdek: w.kms.wrap(t, "root-1", dek)})
	require.Equal(t, "ACTIVE", *w.waitImport(t, eid).Status.KeyName)
	encImg, _ := w.s3.get("images", "enc.vhd")
	ok, err = services.GetVirtualGuestBlockDeviceTemplateGroupService(w.sess).Id(eid).CopyToIcos(&datatypes.Container_Virtual_Guest_Block_Device_Template_Configuration{
		Uri: sl.String("cos://us-south/exports/enc.vhd"), IbmApiKey: sl.String(ownerKey),
	})
	require.NoError(t, err)
	require.True(t, ok)
	waitFor(t, w.srv, "the encrypted export", func() bool {
		got, ok := w.s3.get("exports", "enc-0.vhd")
		return ok && bytes.Equal(got, encImg)
	})

	// An export to a missing bucket fails asynchronously with a reason.
	ok, err = svc.CopyToIcos(&datatypes.Container_Virtual_Guest_Block_Device_Template_Configuration{
		Uri: sl.String("cos://us-south/nobucket/x.vhd"), IbmApiKey: sl.String(ownerKey),
	})
	require.NoError(t, err)
	require.True(t, ok)
	waitFor(t, w.srv, "the failed export event", func() bool {
		n := eventNames(t, w, slsim.ObjectImage)
		return n[len(n)-1] == slsim.EventExportFailed
	})
}
