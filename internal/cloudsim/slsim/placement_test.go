package slsim_test

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/softlayer/softlayer-go/datatypes"
	"github.com/softlayer/softlayer-go/services"
	"github.com/softlayer/softlayer-go/sl"
	"github.com/stretchr/testify/require"

	"github.com/e2eimage/e2eimage/internal/cloudsim/slsim"
)

// strictGet fetches path from the simulator and decodes it into out with
// unknown fields disallowed: every field the simulator sends must exist in
// softlayer-go's datatypes.
func strictGet(t *testing.T, w *world, path string, out any) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, w.api.URL+"/rest/v3.1/"+path, nil)
	require.NoError(t, err)
	req.SetBasicAuth("apikey", ownerKey)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, resp.StatusCode, string(body))
	dec := json.NewDecoder(strings.NewReader(string(body)))
	dec.DisallowUnknownFields()
	require.NoError(t, dec.Decode(out), "%s: %s", path, body)
}

func TestImportLandsInTheImportDatacenterUntilAddLocations(t *testing.T) {
	t.Parallel()
	w := newWorld(t, fast)
	w.s3.put("images", "web.vhd", makeVHD(t, linuxDisk(t), nil))
	id := w.createImport(t, importSpec{uri: "cos://us-south/images/web.vhd"})
	g := w.waitImport(t, id)
	require.Len(t, g.Children, 1)
	require.Equal(t, "dal13", *g.Children[0].Datacenter.Name, "us-south imports land in DAL13")

	// Ordering in another data center fails as an order in an invalid
	// location does.
	vs := services.GetVirtualGuestService(w.sess)
	elsewhere := guestTemplate(*g.GlobalIdentifier)
	elsewhere.Datacenter = &datatypes.Location{Name: sl.String("lon02")}
	_, err := vs.CreateObject(elsewhere)
	e := requireSLError(t, err, http.StatusInternalServerError, slsim.ExceptionOrderInvalidLocation)
	require.True(t, strings.HasPrefix(e.Message, "The location provided for this order is invalid."), e.Message)
	_, err = vs.GenerateOrderTemplate(elsewhere)
	requireSLError(t, err, http.StatusInternalServerError, slsim.ExceptionOrderInvalidLocation)

	// Copy it to lon02.
	svc := services.GetVirtualGuestBlockDeviceTemplateGroupService(w.sess).Id(id)
	var locs []datatypes.Location
	strictGet(t, w, "SoftLayer_Virtual_Guest_Block_Device_Template_Group/"+itoa(id)+"/getStorageLocations.json", &locs)
	var lon *datatypes.Location
	for i := range locs {
		if *locs[i].Name == "lon02" {
			lon = &locs[i]
		}
	}
	require.NotNil(t, lon)
	_, err = svc.AddLocations([]datatypes.Location{{Id: sl.Int(424242)}})
	requireSLError(t, err, http.StatusInternalServerError, "SoftLayer_Exception_InvalidValue")
	ok, err := svc.AddLocations([]datatypes.Location{{Id: lon.Id}})
	require.NoError(t, err)
	require.True(t, ok)
	waitFor(t, w.srv, "the copy to lon02", func() bool {
		g, err := svc.Mask("children[transactionId,blockDevices,datacenter]").GetObject()
		require.NoError(t, err)
		for _, ch := range g.Children {
			if *ch.Datacenter.Name == "lon02" {
				return ch.TransactionId == nil && len(ch.BlockDevices) == 1
			}
		}
		return false
	})
	vg, err := vs.CreateObject(elsewhere)
	require.NoError(t, err)
	require.Equal(t, "lon02", *vg.Datacenter.Name)

	// Both copies and the guest decode strictly into softlayer-go's types.
	var full datatypes.Virtual_Guest_Block_Device_Template_Group
	strictGet(t, w, "SoftLayer_Virtual_Guest_Block_Device_Template_Group/"+itoa(id)+"/getObject.json?objectMask="+
		"mask[id,globalIdentifier,name,status,statusId,transactionId,transaction[transactionStatus],blockDevices,blockDevicesDiskSpaceTotal,datacenters,"+
		"children[id,parentId,status,statusId,transactionId,transaction[transactionStatus],blockDevices,blockDevicesDiskSpaceTotal,datacenter]]", &full)
	require.Len(t, full.Children, 2)
	require.Len(t, full.Datacenters, 2)
	var guest datatypes.Virtual_Guest
	strictGet(t, w, "SoftLayer_Virtual_Guest/"+itoa(*vg.Id)+"/getObject.json?objectMask="+
		"mask[id,globalIdentifier,datacenter,provisionDate,activeTransaction[transactionStatus],blockDeviceTemplateGroup[id,globalIdentifier]]", &guest)
	require.Equal(t, "lon02", *guest.Datacenter.Name)
	var list []datatypes.Virtual_Guest_Block_Device_Template_Group
	strictGet(t, w, "SoftLayer_Account/getPrivateBlockDeviceTemplateGroups.json?objectMask=mask[id,status,children[transactionId,datacenter]]", &list)
	require.Len(t, list, 1)
}

func TestImportDatacenterOfEachRegion(t *testing.T) {
	t.Parallel()
	w := newWorld(t, fast)
	w.s3.put("frankfurt", "web.vhd", makeVHD(t, linuxDisk(t), nil))
	id := w.createImport(t, importSpec{uri: "cos://eu-de/frankfurt/web.vhd"})
	g := w.waitImport(t, id)
	require.Equal(t, "fra02", *g.Children[0].Datacenter.Name)

	_, err := services.GetVirtualGuestBlockDeviceTemplateGroupService(w.sess).CreateFromIcos(&datatypes.Container_Virtual_Guest_Block_Device_Template_Configuration{
		Name: sl.String("x"), Uri: sl.String("cos://br-sao/images/web.vhd"), IbmApiKey: sl.String(importKey),
		OperatingSystemReferenceCode: sl.String("UBUNTU_22_64"),
	})
	e := requireSLError(t, err, http.StatusInternalServerError, "SoftLayer_Exception_InvalidValue")
	require.Contains(t, e.Message, "us-south")
	require.Equal(t, map[string]string{"us-south": "dal13", "us-east": "wdc07", "eu-gb": "lon02", "eu-de": "fra02", "jp-tok": "tok02", "au-syd": "syd04"},
		slsim.DefaultImportDatacenters())
}

func TestDeletedFailedImportVanishes(t *testing.T) {
	t.Parallel()
	w := newWorld(t, fast, func(c *slsim.Config) { c.DeleteFailedImports = true })
	id := w.createImport(t, importSpec{uri: "cos://us-south/images/missing.vhd"})
	svc := services.GetVirtualGuestBlockDeviceTemplateGroupService(w.sess).Id(id)
	waitFor(t, w.srv, "the failed import to disappear", func() bool {
		_, err := svc.GetObject()
		return err != nil
	})
	_, err := svc.GetObject()
	requireSLError(t, err, http.StatusNotFound, slsim.ExceptionObjectNotFound)
	names := eventNames(t, w, slsim.ObjectImage)
	require.Equal(t, slsim.EventImportFailed, names[len(names)-1], "the event log still tells")
}

func TestExportObjectName(t *testing.T) {
	t.Parallel()
	require.Equal(t, "image-0.vhd", slsim.ExportObjectName("image.vhd", 0))
	require.Equal(t, "dir/image-1.vhd", slsim.ExportObjectName("dir/image.VHD", 1))
	require.Equal(t, "image-0.vhd", slsim.ExportObjectName("image", 0))
}
