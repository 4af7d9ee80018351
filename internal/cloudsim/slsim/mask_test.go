package slsim

import (
	"encoding/json"
	"errors"
	"maps"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/softlayer/softlayer-go/datatypes"
)

// maskString renders a parsed mask canonically: children sorted, then the
// typed parts as (Type)[...].
func maskString(n *maskNode) string {
	if n == nil {
		return ""
	}
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(n.children)) {
		c := n.children[k]
		if c.children != nil || c.byType != nil {
			parts = append(parts, k+"["+maskString(c)+"]")
		} else {
			parts = append(parts, k)
		}
	}
	for _, typ := range slices.Sorted(maps.Keys(n.byType)) {
		parts = append(parts, "("+typ+")["+maskString(n.byType[typ])+"]")
	}
	return strings.Join(parts, ",")
}

func TestParseMask(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ in, want string }{
		// softlayer-go's README form, and SLDN REST's legacy form.
		{"id;hostname", "hostname,id"},
		{"datacenter;operatingSystem.passwords;networkComponents", "datacenter,networkComponents,operatingSystem[passwords]"},
		{"id", "id"},
		{"status.keyName", "status[keyName]"},
		// Property sets with either separator.
		{"mask[id,name]", "id,name"},
		{"mask[id;name]", "id,name"},
		{"mask[id, status[keyName; name], transaction.transactionStatus.name]", "id,status[keyName,name],transaction[transactionStatus[name]]"},
		{"mask[orderItem[order[userRecord[username]]], invoiceItem[totalRecurringAmount]]", "invoiceItem[totalRecurringAmount],orderItem[order[userRecord[username]]]"},
		// Rooted paths, alone, comma separated, and in a bare set.
		{"mask.status,mask.transaction", "status,transaction"},
		{"mask.children.datacenter", "children[datacenter]"},
		{"[mask.id,mask.fullyQualifiedDomainName,mask.networkComponents.networkHardware,mask.networkComponents.uplinkComponent]",
			"fullyQualifiedDomainName,id,networkComponents[networkHardware,uplinkComponent]"},
		// Whitespace and newlines, as SLDN lays masks out.
		{"mask \n[\n    id,fullyQualifiedDomainName,networkComponents [\n        networkHardware,uplinkComponent\n    ]\n]",
			"fullyQualifiedDomainName,id,networkComponents[networkHardware,uplinkComponent]"},
		{"updates, assignedUser, attachedHardware.datacenter", "assignedUser,attachedHardware[datacenter],updates"},
		// Types.
		{"mask(SoftLayer_Virtual_Guest)[id,datacenter(SoftLayer_Location)[name]]", "(SoftLayer_Virtual_Guest)[datacenter[(SoftLayer_Location)[name]],id]"},
		{"mask(SoftLayer_Hardware_Server).controlPanel", "(SoftLayer_Hardware_Server)[controlPanel]"},
		{"mask[mask(SoftLayer_Virtual_Guest)[id,hostname]]", "(SoftLayer_Virtual_Guest)[hostname,id]"},
		{"mask[resource(SoftLayer_Hardware)[id,datacenter.longName],resource(SoftLayer_Virtual_Guest)[id]]",
			"resource[(SoftLayer_Hardware)[datacenter[longName],id],(SoftLayer_Virtual_Guest)[id]]"},
		{"mask[id,status( SoftLayer_Virtual_Guest_Block_Device_Template_Group_Status )]", "id,status[(SoftLayer_Virtual_Guest_Block_Device_Template_Group_Status)[]]"},
		// The rest.
		{"filteredMask[id]", "id"},
		{"mask[]", ""},
		{"mask", ""},
		{"mask[status[keyName],status[name]]", "status[keyName,name]"},
		{"mask[id],mask.status", "id,status"},
	} {
		m, err := parseMask(tc.in)
		if err != nil {
			t.Errorf("parseMask(%q): %v", tc.in, err)
			continue
		}
		if got := maskString(m); got != tc.want {
			t.Errorf("parseMask(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
	if m, err := parseMask("  "); m != nil || err != nil {
		t.Errorf("empty mask: %v, %v", m, err)
	}
}

func TestParseMaskErrors(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ in, want string }{
		{"mask[id", "Error on line 1 at column 8: Expected ']', got end of input"},
		{"mask[id]]", "Error on line 1 at column 9: Expected ',' or ';', got ']'"},
		{"mask[status[keyName]", "Error on line 1 at column 21: Expected ']', got end of input"},
		{"mask[id,]", "Error on line 1 at column 9: Expected PROPERTY, got ']'"},
		{"mask[id,'x']", "Error on line 1 at column 9: Expected PROPERTY, got '''"},
		{"mask[\n  id,\n  [name]]", "Error on line 3 at column 3: Expected PROPERTY, got '['"},
		{"id status", "Error on line 1 at column 4: Expected ',' or ';', got 's'"},
		{"mask[[id]]", "Error on line 1 at column 6: Expected PROPERTY, got '['"},
		{"mask(SoftLayer_X", "Error on line 1 at column 17: Expected ')', got end of input"},
		{"mask()[id]", "Error on line 1 at column 6: Expected TYPE, got ')'"},
		{"mask[.id]", "Error on line 1 at column 6: Expected PROPERTY, got '.'"},
		{"a..b", "Error on line 1 at column 3: Expected PROPERTY, got '.'"},
		{",id", "Error on line 1 at column 1: Expected PROPERTY, got ','"},
		{"mask[1id]", "Error on line 1 at column 6: Expected PROPERTY, got '1'"},
		{"mask[id]x", "Error on line 1 at column 9: Expected ',' or ';', got 'x'"},
		{"mask.", "Error on line 1 at column 6: Expected PROPERTY, got end of input"},
		{"mask[é]", "Error on line 1 at column 6: Expected PROPERTY, got 'é'"},
		{strings.Repeat("a.", 40) + "b", "Error on line 1 at column 66: mask nested deeper than 32 levels"},
	} {
		_, err := parseMask(tc.in)
		var ae *apiError
		if !errors.As(err, &ae) {
			t.Errorf("parseMask(%q): %v, want an API error", tc.in, err)
			continue
		}
		if ae.code != ExceptionCommonParser || ae.status != 500 || ae.msg != tc.want {
			t.Errorf("parseMask(%q) = %d %s %q, want 500 %s %q", tc.in, ae.status, ae.code, ae.msg, ExceptionCommonParser, tc.want)
		}
	}
}

func TestPropsOf(t *testing.T) {
	t.Parallel()
	p := propsOf(reflect.TypeOf(datatypes.Virtual_Guest_Block_Device_Template_Group{}))
	for name, local := range map[string]bool{"id": true, "name": true, "createDate": true, "globalIdentifier": false,
		"status": false, "byolFlag": false, "children": false, "childrenCount": false} {
		if got, ok := p[name]; !ok || got.local != local {
			t.Errorf("template %s: local=%v (known %v), want %v", name, got.local, ok, local)
		}
	}
	g := propsOf(reflect.TypeOf(datatypes.Virtual_Guest{}))
	if !g["provisionDate"].local || g["primaryIpAddress"].local || g["activeTransaction"].local {
		t.Error("Virtual_Guest local/relational split does not follow SLDN")
	}
	if !g["activeTransactions"].list || g["activeTransactions"].elem == nil {
		t.Error("activeTransactions is a relational list of transactions")
	}
	c := propsOf(reflect.TypeOf(datatypes.Container_Product_Order_Virtual_Guest{}))
	if !c["prices"].local || !c["complexType"].local || !c["bootMode"].local {
		t.Error("container properties are all local, embedded ones included")
	}
}

func decode(t *testing.T, v any) any {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	var out any
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	return out
}

func TestProject(t *testing.T) {
	t.Parallel()
	typ := reflect.TypeOf(datatypes.Virtual_Guest_Block_Device_Template_Group{})
	full := decode(t, datatypes.Virtual_Guest_Block_Device_Template_Group{
		Id: ptr(1), Name: ptr("n"), GlobalIdentifier: ptr("g"),
		Status:   &datatypes.Virtual_Guest_Block_Device_Template_Group_Status{KeyName: ptr("ACTIVE"), Name: ptr("Active")},
		Children: []datatypes.Virtual_Guest_Block_Device_Template_Group{{Id: ptr(2), Name: ptr("c"), GlobalIdentifier: ptr("x")}},
	})
	for _, tc := range []struct{ mask, want string }{
		{"", `{"id":1,"name":"n"}`},
		{"id", `{"id":1}`},
		{"status", `{"id":1,"name":"n","status":{"keyName":"ACTIVE","name":"Active"}}`},
		{"mask[id,status.keyName]", `{"id":1,"status":{"keyName":"ACTIVE"}}`},
		{"mask[children[id],childrenCount]", `{"children":[{"id":2}],"childrenCount":1,"id":1,"name":"n"}`},
		{"mask[globalIdentifier,blockDevicesCount]", `{"globalIdentifier":"g"}`},
		{"mask[globalIdentifier,blockDeviceCount]", `{"blockDeviceCount":0,"globalIdentifier":"g","id":1,"name":"n"}`},
	} {
		m, err := parseMask(tc.mask)
		if err != nil {
			t.Fatal(err)
		}
		got, err := project(full, typ, m)
		if tc.mask == "mask[globalIdentifier,blockDevicesCount]" {
			if err == nil || !strings.Contains(err.Error(), "Property 'blockDevicesCount' not valid for 'SoftLayer_Virtual_Guest_Block_Device_Template_Group'") {
				t.Errorf("mask %q: err %v", tc.mask, err)
			}
			continue
		}
		if err != nil {
			t.Fatalf("mask %q: %v", tc.mask, err)
		}
		b, _ := json.Marshal(got)
		if string(b) != tc.want {
			t.Errorf("mask %q: got %s, want %s", tc.mask, b, tc.want)
		}
	}
}

func TestFilterOperations(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 3, 10, 12, 0, 0, 0, time.UTC)
	typ := reflect.TypeOf(datatypes.Event_Log{})
	items := []any{
		decode(t, datatypes.Event_Log{ObjectId: ptr(1), ObjectName: ptr("CCI"), EventName: ptr("Power On"), EventCreateDate: slTime(now.Add(-48 * time.Hour))}),
		decode(t, datatypes.Event_Log{ObjectId: ptr(2), ObjectName: ptr("Image"), EventName: ptr("Import Started"), EventCreateDate: slTime(now.Add(-2 * time.Hour))}),
		decode(t, datatypes.Event_Log{ObjectId: ptr(30), ObjectName: ptr("Image"), EventName: ptr("Import Failed"), EventCreateDate: slTime(now)}),
	}
	for _, tc := range []struct {
		filter string
		want   []int
	}{
		{`{"objectName":{"operation":"Image"}}`, []int{2, 30}},
		{`{"objectName":{"operation":"image"}}`, nil},
		{`{"objectName":{"operation":"_= image"}}`, []int{2, 30}},
		{`{"objectName":{"operation":"!=image"}}`, []int{1}},
		{`{"eventName":{"operation":"*= import"}}`, []int{2, 30}},
		{`{"eventName":{"operation":"!*= import"}}`, []int{1}},
		{`{"eventName":{"operation":"^= POWER"}}`, []int{1}},
		{`{"eventName":{"operation":"!^= power"}}`, []int{2, 30}},
		{`{"eventName":{"operation":"$= failed"}}`, []int{30}},
		{`{"eventName":{"operation":"!$= failed"}}`, []int{1, 2}},
		{`{"eventName":{"operation":"~ import%"}}`, []int{2, 30}},
		{`{"eventName":{"operation":"~ import _tarted"}}`, []int{2}},
		{`{"eventName":{"operation":"!~ started"}}`, []int{1, 30}},
		{`{"objectId":{"operation":30}}`, []int{30}},
		{`{"objectId":{"operation":"> 1"}}`, []int{2, 30}},
		{`{"objectId":{"operation":">= 2"}}`, []int{2, 30}},
		{`{"objectId":{"operation":"< 30"}}`, []int{1, 2}},
		{`{"objectId":{"operation":"<= 2"}}`, []int{1, 2}},
		{`{"objectId":{"operation":"in","options":[{"name":"data","value":[1,30]}]}}`, []int{1, 30}},
		{`{"traceId":{"operation":"is null"}}`, []int{1, 2, 30}},
		{`{"traceId":{"operation":"not null"}}`, nil},
		{`{"eventCreateDate":{"operation":"greaterThanDate","options":[{"name":"date","value":["` + now.Add(-3*time.Hour).Format(time.RFC3339) + `"]}]}}`, []int{2, 30}},
		{`{"eventCreateDate":{"operation":"lessThanDate","options":[{"name":"date","value":["03/10/2026"]}]}}`, []int{1}},
		{`{"eventCreateDate":{"operation":"betweenDate","options":[{"name":"startDate","value":["03/08/2026 12:00:00"]},{"name":"endDate","value":["2026-03-10T10:00:00Z"]}]}}`, []int{1, 2}},
		{`{"eventCreateDate":{"operation":"isDate","options":[{"name":"date","value":["2026-03-10"]}]}}`, []int{2, 30}},
		{`{"eventCreateDate":{"operation":">= currentDate - 1"}}`, []int{2, 30}},
		{`{"objectName":{"operation":"Image"},"eventName":{"operation":"^= Import S"}}`, []int{2}},
		{`{"noSuchProperty":{"operation":"x"}}`, []int{1, 2, 30}},
		{`{"objectId":{"operation":"orderBy","options":[{"name":"sort","value":["DESC"]}]}}`, []int{30, 2, 1}},
	} {
		var f map[string]any
		dec := json.NewDecoder(strings.NewReader(tc.filter))
		dec.UseNumber()
		if err := dec.Decode(&f); err != nil {
			t.Fatal(err)
		}
		// Decode items with UseNumber as render does.
		var its []any
		for _, it := range items {
			b, _ := json.Marshal(it)
			d := json.NewDecoder(strings.NewReader(string(b)))
			d.UseNumber()
			var v any
			_ = d.Decode(&v)
			its = append(its, v)
		}
		got, err := applyFilter(its, typ, f, now)
		if err != nil {
			t.Errorf("%s: %v", tc.filter, err)
			continue
		}
		var ids []int
		for _, g := range got {
			n, _ := g.(map[string]any)["objectId"].(json.Number).Int64()
			ids = append(ids, int(n))
		}
		if !reflect.DeepEqual(ids, tc.want) {
			t.Errorf("%s: got %v, want %v", tc.filter, ids, tc.want)
		}
	}
	for _, bad := range []string{
		`{"objectName":"CCI"}`,
		`{"eventCreateDate":{"operation":"betweenDate","options":[{"name":"startDate","value":["x"]}]}}`,
		`{"eventCreateDate":{"operation":"greaterThanDate"}}`,
	} {
		var f map[string]any
		_ = json.Unmarshal([]byte(bad), &f)
		if _, err := applyFilter(items, typ, f, now); err == nil {
			t.Errorf("%s: want an error", bad)
		}
	}
}

func FuzzParseMask(f *testing.F) {
	for _, s := range []string{"mask[id,status[keyName]]", "mask.a.b,mask.c", "a.b", "mask(X)[y(Z)[w]]", "[[]]",
		"id;hostname", "[mask.id,mask.datacenter.name]", "mask[mask(SoftLayer_Virtual_Guest)[id]]", "mask\n[\n id ]"} {
		f.Add(s)
	}
	typ := reflect.TypeOf(datatypes.Virtual_Guest{})
	obj := map[string]any{"id": 1.0, "datacenter": map[string]any{"name": "dal13"}, "activeTransactions": []any{map[string]any{"id": 2.0}}}
	f.Fuzz(func(t *testing.T, s string) {
		m, err := parseMask(s)
		if err != nil {
			var ae *apiError
			if !errors.As(err, &ae) || ae.code != ExceptionCommonParser {
				t.Fatalf("parseMask(%q): %v", s, err)
			}
			return
		}
		_ = validateMask(m, typ)
		_, _ = project(obj, typ, m)
	})
}

func FuzzFilter(f *testing.F) {
	for _, s := range []string{`{"a":{"operation":"x"}}`, `{"eventCreateDate":{"operation":"betweenDate","options":[{"name":"startDate","value":["1"]}]}}`,
		`{"objectId":{"operation":"in","options":[{"name":"data","value":[1]}]}}`, `{"x":{"operation":">= currentDate - q"}}`} {
		f.Add(s)
	}
	typ := reflect.TypeOf(datatypes.Event_Log{})
	items := []any{map[string]any{"objectId": json.Number("1"), "eventName": "A", "eventCreateDate": "2026-01-01T00:00:00Z"}}
	f.Fuzz(func(t *testing.T, s string) {
		var fl map[string]any
		dec := json.NewDecoder(strings.NewReader(s))
		dec.UseNumber()
		if dec.Decode(&fl) != nil {
			return
		}
		_, _ = applyFilter(items, typ, fl, time.Now())
	})
}

// TestProjectTypedAndValidated: a typed part applies to objects of its type
// only, and every name is checked against the type it names.
func TestProjectTypedAndValidated(t *testing.T) {
	t.Parallel()
	typ := reflect.TypeOf(datatypes.Virtual_Guest_Block_Device_Template_Group{})
	full := decode(t, datatypes.Virtual_Guest_Block_Device_Template_Group{
		Id: ptr(1), Name: ptr("n"), GlobalIdentifier: ptr("g"),
		Status: &datatypes.Virtual_Guest_Block_Device_Template_Group_Status{KeyName: ptr("ACTIVE"), Name: ptr("Active")},
	})
	for _, tc := range []struct{ mask, want string }{
		{"mask(SoftLayer_Virtual_Guest_Block_Device_Template_Group)[id,status.keyName]", `{"id":1,"status":{"keyName":"ACTIVE"}}`},
		{"mask(SoftLayer_Virtual_Guest_Block_Device_Template_Group).status", `{"id":1,"name":"n","status":{"keyName":"ACTIVE","name":"Active"}}`},
		// softlayer-go's Mask() sends mask(T)[...] wrapped in mask[...].
		{"mask[mask(SoftLayer_Virtual_Guest_Block_Device_Template_Group)[globalIdentifier]]", `{"globalIdentifier":"g","id":1,"name":"n"}`},
		// A part for another type does not apply to this object.
		{"mask(SoftLayer_Virtual_Guest)[hostname]", `{"id":1,"name":"n"}`},
		{"mask[id,mask(SoftLayer_Virtual_Guest)[hostname]]", `{"id":1}`},
		// Typed and untyped parts merge.
		{"mask[id,mask(SoftLayer_Virtual_Guest_Block_Device_Template_Group)[status.name]]", `{"id":1,"status":{"name":"Active"}}`},
		{"mask[status(SoftLayer_Virtual_Guest_Block_Device_Template_Group_Status)[keyName],id]", `{"id":1,"status":{"keyName":"ACTIVE"}}`},
		// A type the simulator does not know is skipped.
		{"mask(SoftLayer_No_Such_Type)[whatever]", `{"id":1,"name":"n"}`},
	} {
		m, err := parseMask(tc.mask)
		if err != nil {
			t.Fatalf("mask %q: %v", tc.mask, err)
		}
		if err := validateMask(m, typ); err != nil {
			t.Fatalf("mask %q: %v", tc.mask, err)
		}
		got, err := project(full, typ, m)
		if err != nil {
			t.Fatalf("mask %q: %v", tc.mask, err)
		}
		b, _ := json.Marshal(got)
		if string(b) != tc.want {
			t.Errorf("mask %q: got %s, want %s", tc.mask, b, tc.want)
		}
	}
	for _, tc := range []struct{ mask, want string }{
		{"mask[id,noSuchProperty]", "Property 'noSuchProperty' not valid for 'SoftLayer_Virtual_Guest_Block_Device_Template_Group'."},
		{"mask[status[noSuch]]", "Property 'noSuch' not valid for 'SoftLayer_Virtual_Guest_Block_Device_Template_Group_Status'."},
		{"mask.children.status.bogus", "Property 'bogus' not valid for 'SoftLayer_Virtual_Guest_Block_Device_Template_Group_Status'."},
		// Names under a known type are checked against that type.
		{"mask(SoftLayer_Virtual_Guest)[name]", "Property 'name' not valid for 'SoftLayer_Virtual_Guest'."},
		{"mask[datacenters(SoftLayer_Location)[bogus]]", "Property 'bogus' not valid for 'SoftLayer_Location'."},
		// The first bad name in alphabetical order is the one reported.
		{"mask[zz,aa]", "Property 'aa' not valid for 'SoftLayer_Virtual_Guest_Block_Device_Template_Group'."},
	} {
		m, err := parseMask(tc.mask)
		if err != nil {
			t.Fatalf("mask %q: %v", tc.mask, err)
		}
		err = validateMask(m, reflect.TypeOf([]datatypes.Virtual_Guest_Block_Device_Template_Group{}))
		var ae *apiError
		if !errors.As(err, &ae) || ae.code != ExceptionObjectMask || ae.status != 500 || ae.msg != tc.want {
			t.Errorf("mask %q: %v, want 500 %s %q", tc.mask, err, ExceptionObjectMask, tc.want)
		}
	}
}

func TestTypeRegistry(t *testing.T) {
	t.Parallel()
	for _, name := range []string{"SoftLayer_Account", "SoftLayer_Virtual_Guest", "SoftLayer_Hardware_Server", "SoftLayer_Location",
		"SoftLayer_Virtual_Guest_Block_Device_Template_Group_Status", "SoftLayer_Provisioning_Version1_Transaction"} {
		if tt, ok := typeByName(name); !ok || slTypeName(tt) != name {
			t.Errorf("typeByName(%q) = %v, %v", name, tt, ok)
		}
	}
	if !isOfType(reflect.TypeOf(datatypes.Hardware_Server{}), "SoftLayer_Hardware") {
		t.Error("a Hardware_Server is a SoftLayer_Hardware")
	}
	if isOfType(reflect.TypeOf(datatypes.Hardware{}), "SoftLayer_Hardware_Server") {
		t.Error("a Hardware is not a SoftLayer_Hardware_Server")
	}
}
