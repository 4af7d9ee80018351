package slsim

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"reflect"
	"strconv"
	"strings"
	"time"

	"github.com/softlayer/softlayer-go/datatypes"

	"github.com/e2eimage/e2eimage/internal/cloudsim/simcore"
)

// APIPrefix is the path under which Handler serves the REST API, as in
// https://api.softlayer.com/rest/v3.1.
const APIPrefix = "/rest/v3.1/"

// maxRequestBody bounds a request body. SoftLayer does not document a limit;
// the largest bodies here are orders of a few kilobytes.
const maxRequestBody = 1 << 20

// Exception codes of error bodies ({"error": ..., "code": ...}). Bad
// credentials, unknown methods and refused operations use the base class
// ExceptionPublic, as the real API does.
const (
	ExceptionPublic               = "SoftLayer_Exception_Public"
	ExceptionInvalidValue         = "SoftLayer_Exception_InvalidValue"
	ExceptionObjectNotFound       = "SoftLayer_Exception_ObjectNotFound"
	ExceptionOrderInvalidLocation = "SoftLayer_Exception_Order_InvalidLocation"
	ExceptionOrderItemInvalid     = "SoftLayer_Exception_Order_Item_Invalid"
	ExceptionOrderMissingCategory = "SoftLayer_Exception_Order_MissingCategory"
)

// apiError is a SoftLayer exception with its HTTP status. The real API
// answers most exceptions with 500, a missing object with 404 and bad
// credentials with 401.
type apiError struct {
	status int
	code   string
	msg    string
}

func (e *apiError) Error() string { return e.code + ": " + e.msg }

func errPublic(format string, a ...any) *apiError {
	return &apiError{http.StatusInternalServerError, ExceptionPublic, fmt.Sprintf(format, a...)}
}

func errInvalid(format string, a ...any) *apiError {
	return &apiError{http.StatusInternalServerError, ExceptionInvalidValue, fmt.Sprintf(format, a...)}
}

func errNotFound(id int) *apiError {
	return &apiError{http.StatusNotFound, ExceptionObjectNotFound, fmt.Sprintf("Unable to find object with id of '%d'.", id)}
}

func errBadRequest(format string, a ...any) *apiError {
	return &apiError{http.StatusBadRequest, ExceptionPublic, fmt.Sprintf(format, a...)}
}

// call is one API request after authentication and parsing.
type call struct {
	ctx       context.Context
	principal simcore.Principal
	credType  string // "apikey" or "token"
	acct      *account
	userID    int
	remoteIP  string
	service   string
	method    string // as sent (case preserved)
	id        *int
	params    []json.RawMessage
	mask      *maskNode
	filter    map[string]any
	offset    int
	limit     int       // 0: no limit
	now       time.Time // simulated time of the request
}

// param decodes parameter i into v. A missing parameter leaves v untouched
// and reports false.
func (c *call) param(i int, v any) (bool, error) {
	if i >= len(c.params) || string(c.params[i]) == "null" {
		return false, nil
	}
	if err := json.Unmarshal(c.params[i], v); err != nil {
		return false, errBadRequest("Parameter %d of %s::%s is not valid: %v", i+1, c.service, c.method, err)
	}
	return true, nil
}

func (c *call) needID() (int, error) {
	if c.id == nil {
		return 0, errPublic("%s::%s requires an object id (%s/<id>/%s.json).", c.service, c.method, c.service, c.method)
	}
	return *c.id, nil
}

// handlerFunc serves one method. It returns the result value: a datatypes
// struct or slice (rendered through masks, filters and resultLimit), a bool,
// string, int, datatypes.Time, or nullResult.
type handlerFunc func(s *Server, c *call) (any, error)

// nullResult renders as the JSON literal null.
type nullResult struct{}

// method describes one API method.
type method struct {
	fn handlerFunc
	// filterRoot is the objectFilter key a list result is filtered under:
	// the relational property name for SoftLayer_Account::getX, "" for
	// services (like SoftLayer_Event_Log::getAllObjects) filtered at the top.
	filterRoot string
	// defaultMask is applied when the client sends no objectMask.
	defaultMask string
}

// service is an API service: its explicit methods plus, when load is set,
// getObject and a get<Property> for every relational or local property of
// the loaded object.
type service struct {
	methods map[string]method // lower-case method name
	// load returns the object getObject returns (a datatypes struct).
	load func(s *Server, c *call) (any, error)
	// objectType is the datatypes struct type load returns.
	objectType reflect.Type
	// needsID reports whether load requires an id in the path.
	needsID bool
}

func (s *Server) services() map[string]*service {
	return map[string]*service{
		"SoftLayer_Virtual_Guest_Block_Device_Template_Group": templateService(),
		"SoftLayer_Account":       accountService(),
		"SoftLayer_Virtual_Guest": guestService(),
		"SoftLayer_Product_Order": orderService(),
		"SoftLayer_Event_Log":     eventLogService(),
	}
}

func (s *Server) serveHTTP(w http.ResponseWriter, r *http.Request) {
	status, body, total := s.handle(r)
	w.Header().Set("Content-Type", "application/json")
	if total >= 0 {
		w.Header().Set("SoftLayer-Total-Items", strconv.Itoa(total))
	}
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

// handle returns the status, the body (never empty) and the total item count
// of a list result (-1 when not a list).
func (s *Server) handle(r *http.Request) (int, []byte, int) {
	c, svc, m, err := s.parse(r)
	if err != nil {
		return errorBody(err)
	}
	var v any
	if m.fn != nil {
		v, err = m.fn(s, c)
	} else {
		v, err = s.property(svc, c)
	}
	if err != nil {
		return errorBody(err)
	}
	if c.mask == nil && m.defaultMask != "" {
		c.mask, _ = parseMask(m.defaultMask)
	}
	body, total, err := render(c, v, m.filterRoot)
	if err != nil {
		return errorBody(err)
	}
	return http.StatusOK, body, total
}

func errorBody(err error) (int, []byte, int) {
	ae, ok := err.(*apiError)
	if !ok {
		ae = &apiError{http.StatusInternalServerError, ExceptionPublic, "Internal Error: " + err.Error()}
	}
	b, _ := json.Marshal(map[string]string{"error": ae.msg, "code": ae.code})
	return ae.status, b, -1
}

// parse authenticates the request and splits its path and query.
func (s *Server) parse(r *http.Request) (*call, *service, method, error) {
	rest, ok := strings.CutPrefix(r.URL.Path, APIPrefix)
	if !ok {
		return nil, nil, method{}, &apiError{http.StatusNotFound, ExceptionPublic, "Not found: " + r.URL.Path}
	}
	if ext := strings.LastIndexByte(rest, '.'); ext >= 0 && !strings.Contains(rest[ext:], "/") {
		switch rest[ext:] {
		case ".json":
			rest = rest[:ext]
		default:
			return nil, nil, method{}, errBadRequest("Only the .json format is supported by this simulator.")
		}
	}
	parts := strings.Split(strings.Trim(rest, "/"), "/")
	c := &call{ctx: r.Context(), service: parts[0], remoteIP: simcore.RemoteHost(r), now: s.clock.Now()}
	svc, ok := s.services()[c.service]
	if !ok {
		return nil, nil, method{}, &apiError{http.StatusNotFound, ExceptionPublic,
			fmt.Sprintf("Service '%s' is not implemented by this simulator (or does not exist).", c.service)}
	}
	parts = parts[1:]
	if len(parts) > 0 {
		if id, err := strconv.Atoi(parts[0]); err == nil {
			c.id = &id
			parts = parts[1:]
		}
	}
	switch {
	case len(parts) > 1:
		return nil, nil, method{}, errBadRequest("Malformed request path %q.", r.URL.Path)
	case len(parts) == 1:
		c.method = parts[0]
	default:
		switch r.Method {
		case http.MethodGet:
			c.method = "getObject"
		case http.MethodPost:
			c.method = "createObject"
		case http.MethodDelete:
			c.method = "deleteObject"
		case http.MethodPut:
			c.method = "editObject"
		default:
			return nil, nil, method{}, &apiError{http.StatusMethodNotAllowed, ExceptionPublic, "HTTP method not allowed."}
		}
	}

	// Authentication comes before method resolution, as on the real API.
	if err := s.authenticate(r, c); err != nil {
		return nil, nil, method{}, err
	}

	m, ok := svc.methods[strings.ToLower(c.method)]
	if !ok && (svc.load == nil || !isPropertyGetter(svc, c.method)) {
		return nil, nil, method{}, &apiError{http.StatusNotFound, ExceptionPublic,
			fmt.Sprintf("Function (\"%s\") is not a valid method for this service.", c.method)}
	}

	q := r.URL.Query()
	if ms := q.Get("objectMask"); ms != "" {
		mask, err := parseMask(ms)
		if err != nil {
			return nil, nil, method{}, err // SoftLayer_Exception_Common_Parser
		}
		c.mask = mask
	}
	if fs := q.Get("objectFilter"); fs != "" {
		dec := json.NewDecoder(strings.NewReader(fs))
		dec.UseNumber()
		if err := dec.Decode(&c.filter); err != nil {
			return nil, nil, method{}, errPublic("Invalid object filter: %v", err)
		}
	}
	if rl := q.Get("resultLimit"); rl != "" {
		off, lim, err := parseResultLimit(rl)
		if err != nil {
			return nil, nil, method{}, errPublic("Invalid resultLimit %q: %v", rl, err)
		}
		c.offset, c.limit = off, lim
	}
	if r.Body != nil {
		body, err := io.ReadAll(io.LimitReader(r.Body, maxRequestBody+1))
		if err != nil {
			return nil, nil, method{}, errBadRequest("Reading the request body: %v", err)
		}
		if len(body) > maxRequestBody {
			return nil, nil, method{}, errBadRequest("Request body too large.")
		}
		if len(bytes.TrimSpace(body)) > 0 {
			var env struct {
				Parameters []json.RawMessage `json:"parameters"`
			}
			if err := json.Unmarshal(body, &env); err != nil {
				return nil, nil, method{}, errBadRequest("Request body must be {\"parameters\":[...]}: %v", err)
			}
			c.params = env.Parameters
		}
	}
	return c, svc, m, nil
}

func parseResultLimit(s string) (offset, limit int, err error) {
	a, b, found := strings.Cut(s, ",")
	if !found {
		limit, err = strconv.Atoi(strings.TrimSpace(a))
		return 0, limit, err
	}
	if offset, err = strconv.Atoi(strings.TrimSpace(a)); err != nil {
		return 0, 0, err
	}
	if limit, err = strconv.Atoi(strings.TrimSpace(b)); err != nil {
		return 0, 0, err
	}
	if offset < 0 || limit < 0 {
		return 0, 0, fmt.Errorf("negative value")
	}
	return offset, limit, nil
}

// authenticate resolves HTTP Basic apikey:<IBM Cloud API key> or an IAM
// bearer token to a principal and its classic account.
func (s *Server) authenticate(r *http.Request, c *call) error {
	unauthorized := &apiError{http.StatusUnauthorized, ExceptionPublic, "Invalid API token."}
	if user, key, ok := r.BasicAuth(); ok {
		if !strings.EqualFold(user, "apikey") || key == "" {
			return unauthorized
		}
		p, ok := s.cfg.Identity.LookupAPIKey(key)
		if !ok {
			return unauthorized
		}
		c.principal, c.credType = p, "apikey"
	} else if h := r.Header.Get("Authorization"); h != "" {
		if !strings.HasPrefix(strings.ToLower(h), "bearer ") {
			return unauthorized
		}
		p, ok := s.cfg.Identity.LookupToken(h)
		if !ok {
			return unauthorized
		}
		c.principal, c.credType = p, "token"
	} else {
		return unauthorized
	}
	if c.principal.AccountID == "" {
		return unauthorized
	}
	s.mu.Lock()
	c.acct = s.accountFor(c.principal.AccountID)
	c.userID = s.userFor(c.principal.IAMID)
	s.mu.Unlock()
	return nil
}

// isPropertyGetter reports whether name is getObject or get<Property> for a
// property of the service's object type.
func isPropertyGetter(svc *service, name string) bool {
	if strings.EqualFold(name, "getObject") {
		return true
	}
	prop, ok := getterProperty(name)
	return ok && svc.objectType != nil && hasProperty(svc.objectType, prop)
}

func getterProperty(name string) (string, bool) {
	rest, ok := strings.CutPrefix(name, "get")
	if !ok || rest == "" {
		return "", false
	}
	return strings.ToLower(rest[:1]) + rest[1:], true
}

// property serves getObject and the generic get<Property> methods.
func (s *Server) property(svc *service, c *call) (any, error) {
	if svc.needsID {
		if _, err := c.needID(); err != nil {
			return nil, err
		}
	}
	obj, err := svc.load(s, c)
	if err != nil {
		return nil, err
	}
	if strings.EqualFold(c.method, "getObject") {
		return obj, nil
	}
	prop, _ := getterProperty(c.method)
	return propertyValue(obj, prop), nil
}

// propertyValue returns the value of the struct field whose JSON name is
// prop: the element itself for a pointer (nullResult when nil), the slice
// (empty, never nil) for a slice.
func propertyValue(obj any, prop string) any {
	v := reflect.ValueOf(obj)
	for v.Kind() == reflect.Pointer {
		if v.IsNil() {
			return nullResult{}
		}
		v = v.Elem()
	}
	f, ok := fieldByJSON(v, prop)
	if !ok {
		return nullResult{}
	}
	switch f.Kind() {
	case reflect.Pointer:
		if f.IsNil() {
			return nullResult{}
		}
		return f.Elem().Interface()
	case reflect.Slice:
		if f.IsNil() {
			return reflect.MakeSlice(f.Type(), 0, 0).Interface()
		}
		return f.Interface()
	case reflect.Interface:
		if f.IsNil() {
			return nullResult{}
		}
		return f.Interface()
	}
	return f.Interface()
}

// fieldByJSON finds the (possibly promoted) field with JSON name name.
func fieldByJSON(v reflect.Value, name string) (reflect.Value, bool) {
	t := v.Type()
	for i := 0; i < t.NumField(); i++ {
		sf := t.Field(i)
		if sf.Anonymous && sf.Type.Kind() == reflect.Struct {
			if f, ok := fieldByJSON(v.Field(i), name); ok {
				return f, true
			}
			continue
		}
		if jsonName(sf) == name {
			return v.Field(i), true
		}
	}
	return reflect.Value{}, false
}

func jsonName(sf reflect.StructField) string {
	tag := sf.Tag.Get("json")
	n, _, _ := strings.Cut(tag, ",")
	if n == "" {
		return sf.Name
	}
	return n
}

// render encodes a handler's result.
func render(c *call, v any, filterRoot string) ([]byte, int, error) {
	switch x := v.(type) {
	case nullResult:
		return []byte("null"), -1, nil
	case bool:
		return []byte(strconv.FormatBool(x)), -1, nil
	case int:
		return []byte(strconv.Itoa(x)), -1, nil
	case string:
		b, err := json.Marshal(x)
		return b, -1, err
	case datatypes.Time:
		b, err := x.MarshalJSON()
		return b, -1, err
	}
	rv := reflect.ValueOf(v)
	t := rv.Type()
	if err := validateMask(c.mask, t); err != nil {
		return nil, -1, err
	}
	raw, err := json.Marshal(v)
	if err != nil {
		return nil, -1, fmt.Errorf("encoding result: %w", err)
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var generic any
	if err := dec.Decode(&generic); err != nil {
		return nil, -1, fmt.Errorf("decoding result: %w", err)
	}
	total := -1
	if t.Kind() == reflect.Slice {
		elem := t.Elem()
		items, _ := generic.([]any)
		if items == nil {
			items = []any{}
		}
		if c.filter != nil {
			f := c.filter
			if filterRoot != "" {
				sub, _ := c.filter[filterRoot].(map[string]any)
				f = sub
			}
			if f != nil {
				items, err = applyFilter(items, elem, f, c.now)
				if err != nil {
					return nil, -1, err
				}
			}
		}
		total = len(items)
		if c.offset > 0 || c.limit > 0 {
			lo := min(c.offset, len(items))
			hi := len(items)
			if c.limit > 0 {
				hi = min(lo+c.limit, len(items))
			}
			items = items[lo:hi]
		}
		out := make([]any, len(items))
		for i, it := range items {
			p, err := project(it, elem, c.mask)
			if err != nil {
				return nil, -1, err
			}
			out[i] = p
		}
		generic = out
	} else if t.Kind() == reflect.Struct {
		generic, err = project(generic, t, c.mask)
		if err != nil {
			return nil, -1, err
		}
	}
	b, err := json.Marshal(generic)
	return b, total, err
}
