package slsim_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/softlayer/softlayer-go/services"
	"github.com/softlayer/softlayer-go/sl"
	"github.com/stretchr/testify/require"

	"github.com/e2eimage/e2eimage/internal/cloudsim/slsim"
)

// keyPaths lists the key paths of a decoded JSON value: "id",
// "status.keyName", "children[].id"; an empty object or list is listed by
// its own path.
func keyPaths(v any, prefix string, out *[]string) {
	switch x := v.(type) {
	case map[string]any:
		if len(x) == 0 && prefix != "" {
			*out = append(*out, prefix)
		}
		for k, val := range x {
			p := k
			if prefix != "" {
				p = prefix + "." + k
			}
			keyPaths(val, p, out)
		}
	case []any:
		if len(x) == 0 {
			*out = append(*out, prefix)
		}
		for _, e := range x {
			keyPaths(e, prefix+"[]", out)
		}
	default:
		*out = append(*out, prefix)
	}
}

// shape returns the sorted, distinct key paths of v's JSON encoding.
func shape(t *testing.T, v any) []string {
	t.Helper()
	b, err := json.Marshal(v)
	require.NoError(t, err)
	var generic any
	require.NoError(t, json.Unmarshal(b, &generic))
	var out []string
	keyPaths(generic, "", &out)
	sort.Strings(out)
	return slices.Compact(out)
}

// maskForm is one way of writing a mask and what it must select.
type maskForm struct {
	name   string
	mask   string
	exact  []string // the answer's key paths, exactly; or
	has    []string // paths that must be there
	hasNot []string // and paths that must not
}

func (f maskForm) check(t *testing.T, via string, got []string) {
	t.Helper()
	if f.exact != nil {
		require.Equal(t, f.exact, got, "%s via %s", f.name, via)
		return
	}
	for _, p := range f.has {
		require.Contains(t, got, p, "%s via %s", f.name, via)
	}
	for _, p := range f.hasNot {
		for _, g := range got {
			require.False(t, g == p || strings.HasPrefix(g, p+".") || strings.HasPrefix(g, p+"[]"),
				"%s via %s: %s selected (%v)", f.name, via, g, got)
		}
	}
}

var maskForms = []maskForm{
	{name: "softlayer-go README form", mask: "id;name", exact: []string{"id", "name"}},
	{name: "set with commas", mask: "mask[id,name]", exact: []string{"id", "name"}},
	{name: "set with semicolons", mask: "mask[id;name]", exact: []string{"id", "name"}},
	{name: "nested set", mask: "mask[id,status[keyName;name]]", exact: []string{"id", "status.keyName", "status.name"}},
	{name: "doubly nested set", mask: "mask[id,children[id,status[keyName]]]", exact: []string{"children[].id", "children[].status.keyName", "id"}},
	{name: "dotted path", mask: "mask.children.status.keyName",
		has: []string{"id", "name", "children[].id", "children[].status.keyName"}, hasNot: []string{"status", "children[].status.name"}},
	{name: "dotted paths, comma separated", mask: "mask.status,mask.globalIdentifier",
		has: []string{"id", "name", "globalIdentifier", "status.keyName", "status.name"}, hasNot: []string{"children", "transaction"}},
	{name: "bare paths, semicolon separated", mask: "datacenters.name;status.keyName",
		has: []string{"id", "datacenters[].name", "status.keyName"}, hasNot: []string{"status.name", "datacenters[].id"}},
	{name: "bare set of rooted paths", mask: "[mask.id,mask.status.keyName]", exact: []string{"id", "status.keyName"}},
	{name: "laid out over lines", mask: "mask\n[\n    id,\n    status [\n        keyName\n    ]\n]", exact: []string{"id", "status.keyName"}},
	{name: "typed", mask: "mask(SoftLayer_Virtual_Guest_Block_Device_Template_Group)[id,status.keyName]", exact: []string{"id", "status.keyName"}},
	{name: "typed path", mask: "mask(SoftLayer_Virtual_Guest_Block_Device_Template_Group).globalIdentifier",
		has: []string{"id", "name", "globalIdentifier"}, hasNot: []string{"status"}},
	{name: "typed for another type", mask: "mask(SoftLayer_Virtual_Guest)[hostname]",
		has: []string{"id", "name"}, hasNot: []string{"hostname", "status"}},
	{name: "filteredMask", mask: "filteredMask[id,status.name]", exact: []string{"id", "status.name"}},
}

// TestMaskFormsOnTheWire sends every mask form the real API accepts through
// softlayer-go (its Mask() helper and its session with the mask as written)
// and as raw HTTP, and checks what each selects.
func TestMaskFormsOnTheWire(t *testing.T) {
	t.Parallel()
	w := newWorld(t, fast)
	w.s3.put("images", "plain.vhd", makeVHD(t, linuxDisk(t), nil))
	id := w.waitImport(t, w.createImport(t, importSpec{uri: "cos://us-south/images/plain.vhd"})).Id
	require.NotNil(t, id)
	svc := services.GetVirtualGuestBlockDeviceTemplateGroupService(w.sess)

	for _, f := range maskForms {
		t.Run(f.name, func(t *testing.T) {
			// softlayer-go's Mask() rewrites some forms before sending them
			// (mask(T)[...] becomes mask[mask(T)[...]]).
			sent := svc.Mask(f.mask).Options.Mask
			if !strings.HasPrefix(strings.TrimSpace(f.mask), "[") {
				g, err := svc.Id(*id).Mask(f.mask).GetObject()
				require.NoError(t, err, "softlayer-go Mask(%q) sent %q", f.mask, sent)
				f.check(t, "softlayer-go Mask()", shape(t, g))
			}

			// The session sends Options.Mask unchanged.
			var viaSession map[string]any
			require.NoError(t, w.sess.DoRequest("SoftLayer_Virtual_Guest_Block_Device_Template_Group", "getObject", nil,
				&sl.Options{Id: id, Mask: f.mask}, &viaSession))
			f.check(t, "softlayer-go session", shape(t, viaSession))

			status, body := rawGet(t, w, fmt.Sprintf("SoftLayer_Virtual_Guest_Block_Device_Template_Group/%d.json", *id), f.mask)
			require.Equal(t, http.StatusOK, status, "%s", body)
			var raw map[string]any
			require.NoError(t, json.Unmarshal(body, &raw))
			f.check(t, "raw HTTP", shape(t, raw))
		})
	}
}

func rawGet(t *testing.T, w *world, path, mask string) (int, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, w.api.URL+"/rest/v3.1/"+path+"?objectMask="+url.QueryEscape(mask), nil)
	require.NoError(t, err)
	req.SetBasicAuth("apikey", ownerKey)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, body
}

// TestMaskErrorsOnTheWire: a malformed mask and an unknown property get the
// real API's exception codes, through softlayer-go and as raw HTTP, also
// on a list that is empty.
func TestMaskErrorsOnTheWire(t *testing.T) {
	t.Parallel()
	w := newWorld(t, fast)
	for _, tc := range []struct {
		mask, code, msg string
	}{
		{"mask[id", slsim.ExceptionCommonParser, "Error on line 1 at column 8: Expected ']', got end of input"},
		{"mask[id,status[keyName]", slsim.ExceptionCommonParser, "Error on line 1 at column 24: Expected ']', got end of input"},
		{"mask[id]]", slsim.ExceptionCommonParser, "Error on line 1 at column 9: Expected ',' or ';', got ']'"},
		{"mask[id,]", slsim.ExceptionCommonParser, "Error on line 1 at column 9: Expected PROPERTY, got ']'"},
		{"mask[id,'name']", slsim.ExceptionCommonParser, "Error on line 1 at column 9: Expected PROPERTY, got '''"},
		{"id name", slsim.ExceptionCommonParser, "Error on line 1 at column 4: Expected ',' or ';', got 'n'"},
		{"mask[id,noSuchProperty]", slsim.ExceptionObjectMask, "Property 'noSuchProperty' not valid for 'SoftLayer_Virtual_Guest_Block_Device_Template_Group'."},
		{"mask[id,status[nope]]", slsim.ExceptionObjectMask, "Property 'nope' not valid for 'SoftLayer_Virtual_Guest_Block_Device_Template_Group_Status'."},
		{"mask(SoftLayer_Virtual_Guest).nope", slsim.ExceptionObjectMask, "Property 'nope' not valid for 'SoftLayer_Virtual_Guest'."},
	} {
		t.Run(tc.mask, func(t *testing.T) {
			svc := services.GetAccountService(w.sess)
			require.Equal(t, tc.mask, svc.Mask(tc.mask).Options.Mask, "softlayer-go sends this mask unchanged")
			// The account has no templates: the mask is checked all the same.
			_, err := svc.Mask(tc.mask).GetPrivateBlockDeviceTemplateGroups()
			e := requireSLError(t, err, http.StatusInternalServerError, tc.code)
			require.Equal(t, tc.msg, e.Message)

			status, body := rawGet(t, w, "SoftLayer_Account/getPrivateBlockDeviceTemplateGroups.json", tc.mask)
			require.Equal(t, http.StatusInternalServerError, status)
			var eb struct{ Error, Code string }
			require.NoError(t, json.Unmarshal(body, &eb))
			require.Equal(t, tc.code, eb.Code)
			require.Equal(t, tc.msg, eb.Error)
		})
	}
}
