package atsim

import (
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/e2eimage/e2eimage/internal/cloudsim/simcore"
)

// Limits of the query endpoint.
const (
	// DefaultQueryLimit is the number of results when metadata.limit is
	// absent (IBM Cloud Logs' default for direct queries is 2,000).
	DefaultQueryLimit = 2000
	// MaxQueryLimit is the most results one synchronous query returns
	// (IBM Cloud Logs: 50,000, ../../../docs/CLOUD.md section 6.5).
	MaxQueryLimit = 50_000
	// resultsPerMessage is how many results go in one SSE message.
	resultsPerMessage = 500
	// ServiceName is the IAM service name whose access policy lets a
	// service ID query events ("logs", IBM Cloud Logs).
	ServiceName = "logs"
)

// HandlerConfig configures the search endpoint.
type HandlerConfig struct {
	// AccountID is whose events these are; callers must belong to it.
	AccountID string
	// Identity validates bearer tokens (required).
	Identity simcore.Identity
	// Authz decides whether a service ID may query (owner always may).
	Authz simcore.Authorizer
}

// Handler serves POST /v1/query (Cloud Logs shape, server-sent events)
// and GET /v1/events (plain JSON, for debugging) over the store.
func (s *Store) Handler(cfg HandlerConfig) http.Handler {
	mux := http.NewServeMux()
	h := &handler{s: s, cfg: cfg}
	mux.HandleFunc("POST /v1/query", h.auth(h.query))
	mux.HandleFunc("GET /v1/events", h.auth(h.events))
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeErr(w, http.StatusNotFound, "the simulated Activity Tracker does not implement "+r.Method+" "+r.URL.Path)
	})
	return mux
}

type handler struct {
	s   *Store
	cfg HandlerConfig
}

// errorCodes are the error codes of the query API by HTTP status, from the
// code enum of IBM/logs-go-sdk's OpenapiApiErrorError
// (logsv0/logs_v0_dataprime.go); which status each comes with is the
// simulator's choice (invented pairing).
var errorCodes = map[int]string{
	http.StatusBadRequest:          "bad_request_or_unspecified",
	http.StatusUnauthorized:        "unauthenticated",
	http.StatusForbidden:           "forbidden",
	http.StatusNotFound:            "not_found",
	http.StatusTooManyRequests:     "resource_exhausted",
	http.StatusInternalServerError: "method_internal_error",
}

// writeErr answers an error in the query API's error form (logs-go-sdk
// QueryResponseStreamItem / OpenapiApiErrorError: errors[{code, message}],
// trace, status_code).
func writeErr(w http.ResponseWriter, status int, msg string) {
	code, ok := errorCodes[status]
	if !ok {
		code = "bad_request_or_unspecified"
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{"errors": []any{map[string]any{"code": code, "message": msg}},
		"trace": newID(), "status_code": status})
}

func (h *handler) auth(next http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		p, ok := h.cfg.Identity.LookupToken(r.Header.Get("Authorization"))
		if !ok {
			writeErr(w, http.StatusUnauthorized, "a valid IAM bearer token is required")
			return
		}
		if p.AccountID != h.cfg.AccountID || (h.cfg.Authz != nil && !h.cfg.Authz.HasAccess(p.AccountID, p.IAMID, ServiceName, "")) {
			writeErr(w, http.StatusForbidden, "the caller may not read this account's events")
			return
		}
		next(w, r)
	}
}

type queryBody struct {
	Query    string `json:"query"`
	Metadata struct {
		StartDate string `json:"start_date"`
		EndDate   string `json:"end_date"`
		Syntax    string `json:"syntax"`
		Limit     int    `json:"limit"`
		Tier      string `json:"tier"`
	} `json:"metadata"`
}

func parseDate(s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	return time.Parse(time.RFC3339Nano, s)
}

func (h *handler) query(w http.ResponseWriter, r *http.Request) {
	var b queryBody
	const maxBody = 1 << 20
	if err := json.NewDecoder(io.LimitReader(r.Body, maxBody)).Decode(&b); err != nil {
		writeErr(w, http.StatusBadRequest, "the body is not valid JSON: "+err.Error())
		return
	}
	switch b.Metadata.Syntax {
	case "", "lucene", "QUERY_SYNTAX_LUCENE":
	default:
		writeErr(w, http.StatusBadRequest, "syntax "+strconv.Quote(b.Metadata.Syntax)+" is not supported by the simulator (only lucene)")
		return
	}
	switch b.Metadata.Tier {
	case "", "frequent_search", "TIER_FREQUENT_SEARCH":
	default:
		writeErr(w, http.StatusBadRequest, "tier "+strconv.Quote(b.Metadata.Tier)+" is not supported by the simulator (only frequent_search)")
		return
	}
	from, err1 := parseDate(b.Metadata.StartDate)
	to, err2 := parseDate(b.Metadata.EndDate)
	if err1 != nil || err2 != nil {
		writeErr(w, http.StatusBadRequest, "start_date and end_date must be RFC 3339 dates")
		return
	}
	limit := b.Metadata.Limit
	if limit <= 0 {
		limit = DefaultQueryLimit
	}
	if limit > MaxQueryLimit {
		writeErr(w, http.StatusBadRequest, fmt.Sprintf("limit must be at most %d", MaxQueryLimit))
		return
	}
	evs, err := h.s.Search(b.Query, from, to, limit)
	if err != nil {
		writeErr(w, http.StatusBadRequest, err.Error())
		return
	}
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-cache")
	w.WriteHeader(http.StatusOK)
	rc := http.NewResponseController(w)
	// Each item is preceded by a ": success" comment line: the comments of
	// logs-go-sdk's stream reader (logsv0 readEventLoop) show the query
	// API sending one before every data line.
	send := func(v any) bool {
		bs, err := json.Marshal(v)
		if err != nil {
			return false
		}
		if _, err := fmt.Fprintf(w, ": success\ndata: %s\n\n", bs); err != nil {
			return false
		}
		_ = rc.Flush()
		return true
	}
	if !send(map[string]any{"query_id": map[string]any{"query_id": newID()}}) {
		return
	}
	for i := 0; i < len(evs) || i == 0; i += resultsPerMessage {
		end := min(i+resultsPerMessage, len(evs))
		results := make([]any, 0, end-i)
		for j := i; j < end; j++ {
			results = append(results, resultOf(&evs[j]))
		}
		if !send(map[string]any{"result": map[string]any{"results": results}}) || r.Context().Err() != nil {
			return
		}
	}
}

// resultOf renders one event as a Cloud Logs query result.
func resultOf(ev *simcore.Event) map[string]any {
	data, _ := json.Marshal(ev)
	svc := ev.Action
	for i := 0; i < len(svc); i++ {
		if svc[i] == '.' {
			svc = svc[:i]
			break
		}
	}
	sev := "3" // Info
	if ev.Severity == simcore.SeverityWarning {
		sev = "4"
	}
	return map[string]any{
		"metadata": []any{
			map[string]any{"key": "timestamp", "value": ev.EventTime.UTC().Format(time.RFC3339Nano)},
			map[string]any{"key": "severity", "value": sev},
		},
		"labels": []any{
			map[string]any{"key": "applicationname", "value": "ibm-audit-event"},
			map[string]any{"key": "subsystemname", "value": svc},
		},
		"user_data": string(data),
	}
}

func (h *handler) events(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	from, err1 := parseDate(q.Get("from"))
	to, err2 := parseDate(q.Get("to"))
	if err1 != nil || err2 != nil {
		writeErr(w, http.StatusBadRequest, "from and to must be RFC 3339 dates")
		return
	}
	limit, offset := DefaultQueryLimit, 0
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n <= 0 || n > MaxQueryLimit {
			writeErr(w, http.StatusBadRequest, fmt.Sprintf("limit must be 1 to %d", MaxQueryLimit))
			return
		}
		limit = n
	}
	if v := q.Get("offset"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			writeErr(w, http.StatusBadRequest, "offset must be a non-negative integer")
			return
		}
		offset = n
	}
	evs := h.s.Find(Filter{Action: q.Get("action"), TargetID: q.Get("target"), From: from, To: to})
	total := len(evs)
	evs = evs[min(offset, len(evs)):]
	evs = evs[:min(limit, len(evs))]
	if evs == nil {
		evs = []simcore.Event{}
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{"total": total, "offset": offset, "events": evs})
}

func newID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}
