package slsim

import (
	"fmt"
	"reflect"
	"strings"

	"github.com/softlayer/softlayer-go/datatypes"
)

// Object masks (https://sldn.softlayer.com/article/object-masks/).
//
// Semantics implemented:
//   - Without a mask an object carries its local properties only.
//   - A mask that names local properties returns only those (plus the
//     relational ones it names); a mask that names only relational
//     properties returns every local property plus those.
//   - A relational property named without a sub-mask returns its own local
//     properties; name[...] or name.sub selects inside it.
//   - xCount returns the length of the relational list x.
//   - A name that is not a property of the datatype is an error, as on the
//     real API: "Property 'x' not valid for 'SoftLayer_Y'."
//
// Accepted syntax: mask[a,b[c,d],e.f], mask.a (legacy, also comma-separated
// mask.a,mask.b), a bare a or a.b (what softlayer-go sends for a single
// property), filteredMask[...], and type hints mask(SoftLayer_X)[...], whose
// type is ignored.

// maskNode is one level of a parsed mask. children is nil when the node
// selects the property without a sub-mask.
type maskNode struct {
	children map[string]*maskNode
}

func (n *maskNode) child(name string) *maskNode {
	if n.children == nil {
		n.children = make(map[string]*maskNode)
	}
	c, ok := n.children[name]
	if !ok {
		c = &maskNode{}
		n.children[name] = c
	}
	return c
}

// maxMaskDepth bounds the nesting of a mask. The real limit is not
// documented; no datatype nests anywhere near this deep.
const maxMaskDepth = 32

type maskParser struct {
	s     string
	pos   int
	depth int
}

// parseMask parses an objectMask query parameter. The empty string gives nil.
func parseMask(s string) (*maskNode, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return nil, nil
	}
	p := &maskParser{s: s}
	root := &maskNode{children: map[string]*maskNode{}}
	for {
		p.space()
		name := p.ident()
		if name == "" {
			return nil, p.errorf("expected a property name")
		}
		if name == "mask" || name == "filteredMask" {
			if err := p.typeHint(); err != nil {
				return nil, err
			}
			switch p.peek() {
			case '[':
				p.pos++
				if err := p.list(root); err != nil {
					return nil, err
				}
				if err := p.expect(']'); err != nil {
					return nil, err
				}
			case '.':
				p.pos++
				if err := p.item(root); err != nil {
					return nil, err
				}
			}
		} else if err := p.itemNamed(root, name); err != nil {
			return nil, err
		}
		p.space()
		if p.pos >= len(p.s) {
			return root, nil
		}
		if p.peek() != ',' {
			return nil, p.errorf("unexpected %q", p.peek())
		}
		p.pos++
	}
}

func (p *maskParser) errorf(format string, a ...any) error {
	return fmt.Errorf("at offset %d: %s", p.pos, fmt.Sprintf(format, a...))
}

func (p *maskParser) peek() byte {
	if p.pos >= len(p.s) {
		return 0
	}
	return p.s[p.pos]
}

func (p *maskParser) space() {
	for p.pos < len(p.s) && (p.s[p.pos] == ' ' || p.s[p.pos] == '\t' || p.s[p.pos] == '\n') {
		p.pos++
	}
}

func (p *maskParser) expect(b byte) error {
	p.space()
	if p.peek() != b {
		return p.errorf("expected %q", b)
	}
	p.pos++
	return nil
}

func (p *maskParser) ident() string {
	start := p.pos
	for p.pos < len(p.s) {
		c := p.s[p.pos]
		if c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' {
			p.pos++
			continue
		}
		break
	}
	return p.s[start:p.pos]
}

// typeHint skips a "(SoftLayer_Type)" cast.
func (p *maskParser) typeHint() error {
	if p.peek() != '(' {
		return nil
	}
	end := strings.IndexByte(p.s[p.pos:], ')')
	if end < 0 {
		return p.errorf("unterminated type hint")
	}
	p.pos += end + 1
	return nil
}

func (p *maskParser) list(parent *maskNode) error {
	if parent.children == nil {
		parent.children = map[string]*maskNode{}
	}
	for {
		p.space()
		if p.peek() == ']' {
			return nil
		}
		if err := p.item(parent); err != nil {
			return err
		}
		p.space()
		if p.peek() != ',' {
			return nil
		}
		p.pos++
	}
}

func (p *maskParser) item(parent *maskNode) error {
	p.space()
	name := p.ident()
	if name == "" {
		return p.errorf("expected a property name")
	}
	return p.itemNamed(parent, name)
}

func (p *maskParser) itemNamed(parent *maskNode, name string) error {
	p.depth++
	defer func() { p.depth-- }()
	if p.depth > maxMaskDepth {
		return p.errorf("mask nested deeper than %d levels", maxMaskDepth)
	}
	c := parent.child(name)
	if err := p.typeHint(); err != nil {
		return err
	}
	switch p.peek() {
	case '.':
		p.pos++
		if c.children == nil {
			c.children = map[string]*maskNode{}
		}
		return p.item(c)
	case '[':
		p.pos++
		if err := p.list(c); err != nil {
			return err
		}
		return p.expect(']')
	}
	return nil
}

// propInfo describes one property of a datatype.
type propInfo struct {
	local bool
	list  bool
	elem  reflect.Type // struct type of a nested object, nil for scalars
}

var timeType = reflect.TypeOf(datatypes.Time{})

// localProps lists the local properties of the datatypes whose local set
// does not follow the default rule (scalars local, objects relational). From
// the SLDN datatype reference pages.
var localProps = map[reflect.Type][]string{
	reflect.TypeOf(datatypes.Virtual_Guest_Block_Device_Template_Group{}): {
		"accountId", "createDate", "id", "name", "note", "parentId", "publicFlag", "statusId",
		"summary", "transactionId", "userRecordId"},
	reflect.TypeOf(datatypes.Virtual_Guest{}): {
		"accountId", "createDate", "dedicatedAccountHostOnlyFlag", "domain", "fullyQualifiedDomainName",
		"hostname", "id", "lastPowerStateId", "lastVerifiedDate", "maxCpu", "maxCpuUnits", "maxMemory",
		"metricPollDate", "modifyDate", "notes", "postInstallScriptUri", "provisionDate", "startCpus",
		"statusId", "supplementalCreateObjectOptions", "typeId", "uuid"},
	reflect.TypeOf(datatypes.Provisioning_Version1_Transaction{}): {
		"createDate", "elapsedSeconds", "guestId", "hardwareId", "id", "modifyDate", "statusChangeDate"},
}

// propsOf returns the properties of a datatypes struct type by JSON name.
func propsOf(t reflect.Type) map[string]propInfo {
	for t.Kind() == reflect.Pointer || t.Kind() == reflect.Slice {
		t = t.Elem()
	}
	out := map[string]propInfo{}
	if t.Kind() != reflect.Struct {
		return out
	}
	var explicit map[string]bool
	if l, ok := localProps[t]; ok {
		explicit = make(map[string]bool, len(l))
		for _, n := range l {
			explicit[n] = true
		}
	}
	container := strings.HasPrefix(t.Name(), "Container_")
	collect(t, func(name string, ft reflect.Type) {
		pi := propInfo{}
		base := ft
		for base.Kind() == reflect.Pointer || base.Kind() == reflect.Slice {
			if base.Kind() == reflect.Slice {
				pi.list = true
			}
			base = base.Elem()
		}
		nested := base.Kind() == reflect.Struct && base != timeType
		if nested {
			pi.elem = base
		}
		switch {
		case container:
			pi.local = true
		case explicit != nil:
			pi.local = explicit[name]
		default:
			isCount := strings.HasSuffix(name, "Count") && base.Kind() == reflect.Uint
			pi.local = !nested && !pi.list && !isCount && base.Kind() != reflect.Interface
		}
		out[name] = pi
	})
	return out
}

func collect(t reflect.Type, f func(name string, ft reflect.Type)) {
	for i := 0; i < t.NumField(); i++ {
		sf := t.Field(i)
		if sf.Anonymous && sf.Type.Kind() == reflect.Struct {
			collect(sf.Type, f)
			continue
		}
		if !sf.IsExported() {
			continue
		}
		f(jsonName(sf), sf.Type)
	}
}

func hasProperty(t reflect.Type, name string) bool {
	_, ok := propsOf(t)[name]
	return ok
}

func slTypeName(t reflect.Type) string {
	for t.Kind() == reflect.Pointer || t.Kind() == reflect.Slice {
		t = t.Elem()
	}
	return "SoftLayer_" + t.Name()
}

// project applies mask m to v, a decoded JSON value of datatypes type t.
func project(v any, t reflect.Type, m *maskNode) (any, error) {
	switch x := v.(type) {
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			p, err := project(e, t, m)
			if err != nil {
				return nil, err
			}
			out[i] = p
		}
		return out, nil
	case map[string]any:
		props := propsOf(t)
		hasLocal := false
		if m != nil {
			for name := range m.children {
				p, ok := props[name]
				if !ok {
					return nil, errPublic("Property '%s' not valid for '%s'.", name, slTypeName(t))
				}
				hasLocal = hasLocal || p.local
			}
		}
		out := make(map[string]any, len(x))
		for k, val := range x {
			p, known := props[k]
			if !known {
				continue
			}
			var sub *maskNode
			asked := false
			if m != nil {
				sub, asked = m.children[k]
			}
			if p.local {
				if !hasLocal || asked {
					out[k] = val
				}
				continue
			}
			if !asked {
				continue
			}
			if p.elem == nil {
				out[k] = val
				continue
			}
			pv, err := project(val, p.elem, sub)
			if err != nil {
				return nil, err
			}
			out[k] = pv
		}
		if m != nil {
			for name := range m.children {
				if base, ok := countedList(name, props); ok {
					arr, _ := x[base].([]any)
					out[name] = len(arr)
				}
			}
		}
		return out, nil
	}
	return v, nil
}

// countedList returns the relational list a count property counts:
// childrenCount counts children, blockDeviceCount blockDevices,
// activeTransactionCount activeTransactions, propertyCount properties.
func countedList(name string, props map[string]propInfo) (string, bool) {
	base, ok := strings.CutSuffix(name, "Count")
	if !ok || base == "" {
		return "", false
	}
	cands := []string{base, base + "s", base + "es"}
	if b, ok := strings.CutSuffix(base, "y"); ok {
		cands = append(cands, b+"ies")
	}
	for _, c := range cands {
		if p, ok := props[c]; ok && p.list {
			return c, true
		}
	}
	return "", false
}
