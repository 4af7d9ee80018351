package slsim

import (
	"encoding/json"
	"fmt"
	"reflect"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Object filters (https://sldn.softlayer.com/article/object-filters/).
//
// A filter is a tree of property names ending in criteria
// {"operation": <op>, "options": [{"name": n, "value": [...]}]}; all
// criteria must hold (AND). A criterion under a relational list holds when
// any element satisfies it. Property names that are not properties of the
// datatype are ignored, as the real API ignores them. Supported operations:
//
//	value            exact match (case-sensitive; numbers compare numerically)
//	!= v             not equal (case-insensitive)
//	_= v             equal, case-insensitive
//	*= v, !*= v      contains / does not contain (case-insensitive)
//	^= v, !^= v      begins with / does not
//	$= v, !$= v      ends with / does not
//	~ v, !~ v        SQL LIKE (% and _ wildcards; no wildcard = contains), case-insensitive
//	> v, >= v, < v, <= v   numeric (or lexical) comparison
//	is null, not null
//	in               options [{"name":"data","value":[...]}]
//	isDate, lessThanDate, greaterThanDate   options [{"name":"date","value":["<date>"]}]
//	betweenDate      options startDate / endDate (inclusive)
//	>= currentDate - N   within the last N days (simulated clock)
//	orderBy          options [{"name":"sort","value":["ASC"|"DESC"]}], optional sortOrder
//
// Dates are accepted as RFC 3339, "2006-01-02T15:04:05", "01/02/2006 15:04:05",
// "01/02/2006" or "2006-01-02"; date-only values mean midnight UTC.

type sortKey struct {
	path  []string
	desc  bool
	order int
}

// applyFilter keeps the items (decoded JSON of datatypes type t) that match f.
func applyFilter(items []any, t reflect.Type, f map[string]any, now time.Time) ([]any, error) {
	out := items[:0:0]
	for _, it := range items {
		ok, err := matchNode(it, t, f, now)
		if err != nil {
			return nil, err
		}
		if ok {
			out = append(out, it)
		}
	}
	var keys []sortKey
	collectOrderBy(f, nil, &keys)
	if len(keys) > 0 {
		sort.SliceStable(keys, func(i, j int) bool { return keys[i].order < keys[j].order })
		sort.SliceStable(out, func(i, j int) bool {
			for _, k := range keys {
				c := compareValues(valueAt(out[i], k.path), valueAt(out[j], k.path))
				if c == 0 {
					continue
				}
				if k.desc {
					return c > 0
				}
				return c < 0
			}
			return false
		})
	}
	return out, nil
}

func isCriterion(f map[string]any) bool {
	_, op := f["operation"]
	_, opts := f["options"]
	return op || opts
}

func matchNode(v any, t reflect.Type, f map[string]any, now time.Time) (bool, error) {
	if isCriterion(f) {
		return evalCriterion(v, f, now)
	}
	obj, _ := v.(map[string]any)
	var props map[string]propInfo
	if t != nil {
		props = propsOf(t)
	}
	for k, raw := range f {
		sub, ok := raw.(map[string]any)
		if !ok {
			return false, errPublic("Invalid object filter: property '%s' must map to an object.", k)
		}
		p, known := props[k]
		if !known {
			continue // the real API silently ignores unknown properties
		}
		val := obj[k]
		if p.list && p.elem != nil {
			arr, _ := val.([]any)
			found := false
			for _, e := range arr {
				m, err := matchNode(e, p.elem, sub, now)
				if err != nil {
					return false, err
				}
				if m {
					found = true
					break
				}
			}
			if !found {
				return false, nil
			}
			continue
		}
		m, err := matchNode(val, p.elem, sub, now)
		if err != nil || !m {
			return false, err
		}
	}
	return true, nil
}

func collectOrderBy(f map[string]any, path []string, keys *[]sortKey) {
	if isCriterion(f) {
		if op, _ := f["operation"].(string); strings.EqualFold(strings.TrimSpace(op), "orderBy") {
			k := sortKey{path: append([]string(nil), path...)}
			if dir, ok := optionValues(f)["sort"]; ok && len(dir) > 0 {
				k.desc = strings.EqualFold(fmt.Sprint(dir[0]), "DESC")
			}
			if so, ok := optionValues(f)["sortOrder"]; ok && len(so) > 0 {
				k.order, _ = strconv.Atoi(fmt.Sprint(so[0]))
			}
			*keys = append(*keys, k)
		}
		return
	}
	for k, raw := range f {
		if sub, ok := raw.(map[string]any); ok {
			collectOrderBy(sub, append(path, k), keys)
		}
	}
}

func valueAt(v any, path []string) any {
	for _, p := range path {
		m, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = m[p]
	}
	return v
}

// optionValues returns the options of a criterion by name.
func optionValues(f map[string]any) map[string][]any {
	out := map[string][]any{}
	opts, _ := f["options"].([]any)
	for _, o := range opts {
		m, ok := o.(map[string]any)
		if !ok {
			continue
		}
		name, _ := m["name"].(string)
		switch vv := m["value"].(type) {
		case []any:
			out[name] = vv
		case nil:
		default:
			out[name] = []any{vv}
		}
	}
	return out
}

// stringOps are the prefix operators, longest first so that "!*=" wins
// over "!=".
var stringOps = []string{"!*=", "!^=", "!$=", "!~", "!=", "*=", "^=", "$=", "_=", ">=", "<=", "~", ">", "<"}

func evalCriterion(val any, f map[string]any, now time.Time) (bool, error) {
	opts := optionValues(f)
	switch op := f["operation"].(type) {
	case json.Number:
		return equalValue(val, op.String(), true), nil
	case bool:
		b, ok := val.(bool)
		return ok && b == op, nil
	case nil:
		return true, nil
	case string:
		s := strings.TrimSpace(op)
		switch strings.ToLower(s) {
		case "in":
			for _, d := range opts["data"] {
				if equalValue(val, fmt.Sprint(d), true) {
					return true, nil
				}
			}
			return false, nil
		case "is null":
			return val == nil, nil
		case "not null":
			return val != nil, nil
		case "orderby":
			return true, nil
		case "isdate", "lessthandate", "greaterthandate", "betweendate":
			return evalDate(strings.ToLower(s), val, opts)
		}
		if rest, ok := strings.CutPrefix(s, ">= currentDate"); ok {
			days, err := strconv.Atoi(strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(rest), "-")))
			if err != nil {
				return false, errPublic("Invalid object filter operation %q.", s)
			}
			t, ok := parseFilterDate(val)
			return ok && !t.Before(now.AddDate(0, 0, -days)), nil
		}
		for _, p := range stringOps {
			if arg, ok := strings.CutPrefix(s, p); ok {
				return evalOp(p, val, strings.TrimSpace(arg)), nil
			}
		}
		return equalValue(val, s, true), nil
	}
	return false, errPublic("Invalid object filter operation %v.", f["operation"])
}

func scalarString(v any) (string, bool) {
	switch x := v.(type) {
	case string:
		return x, true
	case json.Number:
		return x.String(), true
	case bool:
		return strconv.FormatBool(x), true
	}
	return "", false
}

func equalValue(val any, want string, caseSensitive bool) bool {
	s, ok := scalarString(val)
	if !ok {
		return false
	}
	if a, err1 := strconv.ParseFloat(s, 64); err1 == nil {
		if b, err2 := strconv.ParseFloat(want, 64); err2 == nil {
			return a == b
		}
	}
	if caseSensitive {
		return s == want
	}
	return strings.EqualFold(s, want)
}

func evalOp(op string, val any, arg string) bool {
	s, ok := scalarString(val)
	if !ok {
		return false
	}
	ls, la := strings.ToLower(s), strings.ToLower(arg)
	switch op {
	case "!=":
		return !equalValue(val, arg, false)
	case "_=":
		return equalValue(val, arg, false)
	case "*=":
		return strings.Contains(ls, la)
	case "!*=":
		return !strings.Contains(ls, la)
	case "^=":
		return strings.HasPrefix(ls, la)
	case "!^=":
		return !strings.HasPrefix(ls, la)
	case "$=":
		return strings.HasSuffix(ls, la)
	case "!$=":
		return !strings.HasSuffix(ls, la)
	case "~":
		return like(ls, la)
	case "!~":
		return !like(ls, la)
	case ">", ">=", "<", "<=":
		c := compareValues(val, arg)
		switch op {
		case ">":
			return c > 0
		case ">=":
			return c >= 0
		case "<":
			return c < 0
		default:
			return c <= 0
		}
	}
	return false
}

func like(s, pattern string) bool {
	if !strings.ContainsAny(pattern, "%_") {
		return strings.Contains(s, pattern)
	}
	var b strings.Builder
	b.WriteString("^")
	for _, r := range pattern {
		switch r {
		case '%':
			b.WriteString(".*")
		case '_':
			b.WriteString(".")
		default:
			b.WriteString(regexp.QuoteMeta(string(r)))
		}
	}
	b.WriteString("$")
	re, err := regexp.Compile(b.String())
	return err == nil && re.MatchString(s)
}

// compareValues orders two scalars: numerically when both are numbers, by
// instant when both are dates, else lexically. nil sorts first.
func compareValues(a, b any) int {
	as, aok := scalarString(a)
	bs, bok := scalarString(b)
	switch {
	case !aok && !bok:
		return 0
	case !aok:
		return -1
	case !bok:
		return 1
	}
	if x, err := strconv.ParseFloat(as, 64); err == nil {
		if y, err := strconv.ParseFloat(bs, 64); err == nil {
			switch {
			case x < y:
				return -1
			case x > y:
				return 1
			}
			return 0
		}
	}
	if x, ok := parseFilterDate(as); ok {
		if y, ok := parseFilterDate(bs); ok {
			return x.Compare(y)
		}
	}
	return strings.Compare(as, bs)
}

var dateLayouts = []string{time.RFC3339Nano, "2006-01-02T15:04:05", "01/02/2006 15:04:05", "01/02/2006", "2006-01-02"}

func parseFilterDate(v any) (time.Time, bool) {
	s, ok := scalarString(v)
	if !ok {
		return time.Time{}, false
	}
	for _, l := range dateLayouts {
		if t, err := time.Parse(l, strings.TrimSpace(s)); err == nil {
			return t, true
		}
	}
	return time.Time{}, false
}

func evalDate(op string, val any, opts map[string][]any) (bool, error) {
	t, ok := parseFilterDate(val)
	if !ok {
		return false, nil
	}
	get := func(name string) (time.Time, error) {
		vs := opts[name]
		if len(vs) == 0 {
			return time.Time{}, errPublic("Invalid object filter: %s needs option '%s'.", op, name)
		}
		d, ok := parseFilterDate(vs[0])
		if !ok {
			return time.Time{}, errPublic("Invalid object filter: cannot parse date %v.", vs[0])
		}
		return d, nil
	}
	switch op {
	case "isdate":
		d, err := get("date")
		if err != nil {
			return false, err
		}
		y1, m1, d1 := t.UTC().Date()
		y2, m2, d2 := d.UTC().Date()
		return y1 == y2 && m1 == m2 && d1 == d2, nil
	case "lessthandate":
		d, err := get("date")
		return err == nil && t.Before(d), err
	case "greaterthandate":
		d, err := get("date")
		return err == nil && t.After(d), err
	default: // betweendate
		start, err := get("startDate")
		if err != nil {
			return false, err
		}
		end, err := get("endDate")
		if err != nil {
			return false, err
		}
		return !t.Before(start) && !t.After(end), nil
	}
}
