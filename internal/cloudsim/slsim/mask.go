package slsim

import (
	"fmt"
	"maps"
	"net/http"
	"reflect"
	"slices"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/softlayer/softlayer-go/datatypes"
)

// Object masks: the objectMask query parameter.
//
// # Grammar
//
// Sources, all public:
//
//   - SLDN "Object Masks" (https://sldn.softlayer.com/article/object-masks/,
//     source softlayer/githubio_source content/article/object-masks.md): the
//     root "mask" stands for the returned object; a property follows a "."
//     and properties chain (mask.a.b); several masks are separated by
//     commas (mask.a,mask.b); a property set is a comma-separated list in
//     brackets after a property name or "mask" (mask[id,b[c]]), and a bare
//     set of rooted paths is the same thing ([mask.id,mask.b.c]); a type in
//     parentheses after "mask" or a property name (mask(SoftLayer_X).p,
//     p(SoftLayer_X)[...]) lets the mask name properties of that type, and
//     the same property may appear once per type; masks may span lines.
//   - SLDN "REST" (content/article/rest.md): objectMask=mask[...] and the
//     older objectMask=datacenter;operatingSystem.passwords;networkComponents
//     (top-level paths separated by semicolons).
//   - softlayer-go v1.1.7: README.md sets Mask("id;hostname");
//     services/*.go Mask() wraps a mask holding "[" or "," that does not
//     start with "mask[" in mask[...] (so Mask("mask(T)[a]") is sent as
//     mask[mask(T)[a]]); session/rest.go sends the result unchanged as
//     objectMask; session/xmlrpc.go wraps anything not starting with
//     "mask[" (so "id;hostname" travels as mask[id;hostname]).
//   - softlayer-python: SoftLayer/transports/transport.py
//     (_format_object_mask) sends masks starting with "mask", "[" or
//     "filteredMask" as they are and wraps anything else in mask[...];
//     docs/api/client.rst passes "updates, assignedUser,
//     attachedHardware.datacenter" (spaces after commas).
//
// What the simulator accepts, written out (whitespace, newlines included,
// may surround every token):
//
//	objectMask = part { sep part }
//	part       = root | set | item
//	root       = ( "mask" | "filteredMask" ) [ type ] [ "." item | set ]
//	set        = "[" [ member { sep member } ] "]"
//	member     = root | item       (root only in the set of the object itself)
//	item       = name [ type ] [ "." item | set ]
//	type       = "(" name ")"
//	sep        = "," | ";"
//	name       = ( letter | "_" ) { letter | digit | "_" }
//
// Our reading where the sources are silent (invented): ";" separates
// members inside a set as "," does (softlayer-go's XML-RPC transport sends
// mask[id;hostname], SLDN shows ";" only between top-level paths);
// "mask" inside the object's own set is the object again (that is what
// mask[mask(T)[a]], softlayer-go's wrapping of mask(T)[a], needs);
// filteredMask is read as a plain mask (its filtering is not modelled); an
// empty set is allowed (SLDN's REST URL template shows objectMask=mask[]).
// Nesting is limited to maxMaskDepth levels (the real limit, if any, is
// not documented).
//
// # Types
//
// A part with a type applies to objects of that type (or of a type that
// embeds it in softlayer-go's datatypes, SoftLayer's subtype relation) and
// is skipped for other objects, as SLDN's SoftLayer_Search example implies.
// Its property names are checked against the named type when the simulator
// knows the type (typeByName); a type name it does not know is not an error
// (invented: the real API's answer is not documented).
//
// # Errors
//
// A mask that does not parse is a 500 SoftLayer_Exception_Common_Parser
// "Error on line L at column C: Expected PROPERTY, got 'X'" (the code and
// the wording for a missing property are from softlayer-python pull
// request #345's output; the HTTP status, the 1-based column, the other
// expected tokens and "end of input" are invented). A property the object's
// type does not have is a 500 SoftLayer_Exception_WebService_ObjectMask
// "Property 'x' not valid for 'SoftLayer_Y'." (code and wording from
// softlayer-python issue #1088 and softlayer-api-php-client issue #14, the
// status from softlayer-java issue #42).

// Exception codes of mask errors.
const (
	ExceptionCommonParser = "SoftLayer_Exception_Common_Parser"
	ExceptionObjectMask   = "SoftLayer_Exception_WebService_ObjectMask"
)

// maskNode is one level of a parsed mask. children are the properties it
// selects; nil means the property is selected without a sub-mask. byType
// holds the parts that apply only to objects of a named type.
type maskNode struct {
	children map[string]*maskNode
	byType   map[string]*maskNode
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

func (n *maskNode) typed(name string) *maskNode {
	if n.byType == nil {
		n.byType = make(map[string]*maskNode)
	}
	c, ok := n.byType[name]
	if !ok {
		c = &maskNode{}
		n.byType[name] = c
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

// parseMask parses an objectMask query parameter. The empty string gives
// nil; a syntax error is an *apiError (SoftLayer_Exception_Common_Parser).
func parseMask(s string) (*maskNode, error) {
	if strings.TrimSpace(s) == "" {
		return nil, nil
	}
	p := &maskParser{s: s}
	root := &maskNode{children: map[string]*maskNode{}}
	for {
		if err := p.part(root); err != nil {
			return nil, err
		}
		p.space()
		if p.eof() {
			return root, nil
		}
		if !p.sep() {
			return nil, p.expected("',' or ';'")
		}
	}
}

// part parses one top-level part: a root, a set of the object, or an item.
func (p *maskParser) part(root *maskNode) error {
	p.space()
	if p.peek() == '[' {
		p.pos++
		return p.set(root, true)
	}
	name := p.name()
	if name == "" {
		return p.expected("PROPERTY")
	}
	if isRootName(name) {
		return p.root(root)
	}
	return p.item(root, name)
}

func isRootName(name string) bool { return name == "mask" || name == "filteredMask" }

// root parses what follows "mask": an optional type, then a path or a set.
func (p *maskParser) root(obj *maskNode) error {
	target := obj
	p.space()
	if p.peek() == '(' {
		typ, err := p.typeName()
		if err != nil {
			return err
		}
		target = obj.typed(typ)
		p.space()
	}
	switch p.peek() {
	case '.':
		p.pos++
		return p.path(target)
	case '[':
		p.pos++
		return p.set(target, true)
	}
	if target.children == nil {
		target.children = map[string]*maskNode{}
	}
	return nil
}

// set parses the members of a property set, after its "[", up to and
// including its "]". In the object's own set (atRoot) "mask" is the object.
func (p *maskParser) set(parent *maskNode, atRoot bool) error {
	if parent.children == nil {
		parent.children = map[string]*maskNode{}
	}
	p.space()
	if p.peek() == ']' {
		p.pos++
		return nil
	}
	for {
		p.space()
		name := p.name()
		if name == "" {
			return p.expected("PROPERTY")
		}
		var err error
		if atRoot && isRootName(name) {
			err = p.root(parent)
		} else {
			err = p.item(parent, name)
		}
		if err != nil {
			return err
		}
		p.space()
		switch {
		case p.peek() == ']':
			p.pos++
			return nil
		case p.sep():
		default:
			return p.expected("']'")
		}
	}
}

// path parses the item after a ".".
func (p *maskParser) path(parent *maskNode) error {
	p.space()
	name := p.name()
	if name == "" {
		return p.expected("PROPERTY")
	}
	return p.item(parent, name)
}

// item parses what follows a property name: a type, then a path or a set.
func (p *maskParser) item(parent *maskNode, name string) error {
	p.depth++
	defer func() { p.depth-- }()
	if p.depth > maxMaskDepth {
		return p.errorf("mask nested deeper than %d levels", maxMaskDepth)
	}
	c := parent.child(name)
	p.space()
	if p.peek() == '(' {
		typ, err := p.typeName()
		if err != nil {
			return err
		}
		c = c.typed(typ)
		p.space()
	}
	switch p.peek() {
	case '.':
		p.pos++
		if c.children == nil {
			c.children = map[string]*maskNode{}
		}
		return p.path(c)
	case '[':
		p.pos++
		return p.set(c, false)
	}
	return nil
}

// typeName parses "(" name ")".
func (p *maskParser) typeName() (string, error) {
	p.pos++ // "("
	p.space()
	typ := p.name()
	if typ == "" {
		return "", p.expected("TYPE")
	}
	p.space()
	if p.peek() != ')' {
		return "", p.expected("')'")
	}
	p.pos++
	return typ, nil
}

func (p *maskParser) eof() bool { return p.pos >= len(p.s) }

func (p *maskParser) peek() byte {
	if p.eof() {
		return 0
	}
	return p.s[p.pos]
}

func (p *maskParser) sep() bool {
	if c := p.peek(); c == ',' || c == ';' {
		p.pos++
		return true
	}
	return false
}

func (p *maskParser) space() {
	for !p.eof() {
		switch p.s[p.pos] {
		case ' ', '\t', '\n', '\r':
			p.pos++
		default:
			return
		}
	}
}

func (p *maskParser) name() string {
	start := p.pos
	for !p.eof() {
		c := p.s[p.pos]
		if c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || p.pos > start && c >= '0' && c <= '9' {
			p.pos++
			continue
		}
		break
	}
	return p.s[start:p.pos]
}

// lineCol returns the 1-based line and column of the parser's position.
func (p *maskParser) lineCol() (int, int) {
	before := p.s[:p.pos]
	line := strings.Count(before, "\n") + 1
	col := p.pos - strings.LastIndexByte(before, '\n')
	return line, col
}

func (p *maskParser) expected(what string) error {
	got := "end of input"
	if !p.eof() {
		r, _ := utf8.DecodeRuneInString(p.s[p.pos:])
		got = fmt.Sprintf("'%c'", r)
	}
	return p.errorf("Expected %s, got %s", what, got)
}

func (p *maskParser) errorf(format string, a ...any) error {
	line, col := p.lineCol()
	return &apiError{http.StatusInternalServerError, ExceptionCommonParser,
		fmt.Sprintf("Error on line %d at column %d: %s", line, col, fmt.Sprintf(format, a...))}
}

// errMaskProperty is the real API's answer to a property the type lacks.
func errMaskProperty(name string, t reflect.Type) error {
	return &apiError{http.StatusInternalServerError, ExceptionObjectMask,
		fmt.Sprintf("Property '%s' not valid for '%s'.", name, slTypeName(t))}
}

// effective returns the children of m that apply to an object of type t:
// the untyped ones merged with those of every type part t satisfies.
func (m *maskNode) effective(t reflect.Type) map[string]*maskNode {
	out := m.children
	copied := false
	for _, typ := range slices.Sorted(maps.Keys(m.byType)) {
		if !isOfType(t, typ) {
			continue
		}
		sc := m.byType[typ].effective(t)
		if sc == nil {
			continue
		}
		if !copied {
			out = maps.Clone(out)
			if out == nil {
				out = map[string]*maskNode{}
			}
			copied = true
		}
		for name, c := range sc {
			out[name] = mergeMasks(out[name], c)
		}
	}
	return out
}

// mergeMasks returns the union of two masks of the same property.
func mergeMasks(a, b *maskNode) *maskNode {
	if a == nil {
		return b
	}
	if b == nil {
		return a
	}
	n := &maskNode{}
	if a.children != nil || b.children != nil {
		n.children = maps.Clone(a.children)
		if n.children == nil {
			n.children = map[string]*maskNode{}
		}
		for k, v := range b.children {
			n.children[k] = mergeMasks(n.children[k], v)
		}
	}
	if a.byType != nil || b.byType != nil {
		n.byType = maps.Clone(a.byType)
		if n.byType == nil {
			n.byType = map[string]*maskNode{}
		}
		for k, v := range b.byType {
			n.byType[k] = mergeMasks(n.byType[k], v)
		}
	}
	return n
}

// isOfType reports whether objects of type t are of the SoftLayer type
// named name: t itself or a type t embeds (softlayer-go's datatypes embed
// the parent type, e.g. Hardware_Server embeds Hardware).
func isOfType(t reflect.Type, name string) bool {
	for t.Kind() == reflect.Pointer || t.Kind() == reflect.Slice {
		t = t.Elem()
	}
	if t.Kind() != reflect.Struct {
		return false
	}
	if slTypeName(t) == name {
		return true
	}
	for i := range t.NumField() {
		if sf := t.Field(i); sf.Anonymous && isOfType(sf.Type, name) {
			return true
		}
	}
	return false
}

var (
	typeRegistryOnce sync.Once
	typeRegistry     map[string]reflect.Type
)

// typeByName finds a softlayer-go datatype by its SoftLayer name among the
// types reachable from SoftLayer_Account and the types the simulator
// serves (about 500 of softlayer-go's 1,200).
func typeByName(name string) (reflect.Type, bool) {
	typeRegistryOnce.Do(func() {
		typeRegistry = map[string]reflect.Type{}
		pkg := reflect.TypeOf(datatypes.Account{}).PkgPath()
		var walk func(t reflect.Type)
		walk = func(t reflect.Type) {
			for t.Kind() == reflect.Pointer || t.Kind() == reflect.Slice {
				t = t.Elem()
			}
			if t.Kind() != reflect.Struct || t.PkgPath() != pkg || t == timeType {
				return
			}
			n := slTypeName(t)
			if _, seen := typeRegistry[n]; seen {
				return
			}
			typeRegistry[n] = t
			for i := range t.NumField() {
				walk(t.Field(i).Type)
			}
		}
		for _, root := range []any{
			datatypes.Account{}, datatypes.Virtual_Guest{}, datatypes.Virtual_Guest_Block_Device_Template_Group{},
			datatypes.Event_Log{}, datatypes.Software_Description{}, datatypes.Container_Product_Order_Virtual_Guest{},
			datatypes.Container_Product_Order_Receipt{},
		} {
			walk(reflect.TypeOf(root))
		}
	})
	t, ok := typeRegistry[name]
	return t, ok
}

// validateMask checks every property name of m against type t (the
// element type for lists), as the real API does before it answers: an
// unknown name is an error even when the result is an empty list. Typed
// parts are checked against their named type when it is known.
func validateMask(m *maskNode, t reflect.Type) error {
	if m == nil {
		return nil
	}
	for t.Kind() == reflect.Pointer || t.Kind() == reflect.Slice {
		t = t.Elem()
	}
	if t.Kind() != reflect.Struct {
		return nil
	}
	props := propsOf(t)
	for _, name := range slices.Sorted(maps.Keys(m.children)) {
		p, ok := props[name]
		if !ok {
			return errMaskProperty(name, t)
		}
		if p.elem != nil {
			if err := validateMask(m.children[name], p.elem); err != nil {
				return err
			}
		}
	}
	for _, typ := range slices.Sorted(maps.Keys(m.byType)) {
		if tt, ok := typeByName(typ); ok {
			if err := validateMask(m.byType[typ], tt); err != nil {
				return err
			}
		}
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
		var asks map[string]*maskNode // the mask's properties for this object
		if m != nil {
			asks = m.effective(t)
			for _, name := range slices.Sorted(maps.Keys(asks)) {
				p, ok := props[name]
				if !ok {
					return nil, errMaskProperty(name, t)
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
			sub, asked := asks[k]
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
			for name := range asks {
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
