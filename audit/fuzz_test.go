package audit

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"testing"
)

// FuzzReadEventStream: any byte stream is read without a panic, and a
// stream rewritten with other line ends (LF, CRLF) gives the same events.
func FuzzReadEventStream(f *testing.F) {
	for _, s := range []string{
		"data: {\"a\":1}\n\n", "data:x\r\n\r\n", ": ping\n\ndata: a\ndata: b\n\n", "data: x", "\r\r\n\n",
		"event: e\nid: 1\nretry: 5\ndata\n\n", "data: \u00e9\n\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		read := func(b []byte) []string {
			var out []string
			if err := ReadEventStream(bytes.NewReader(b), func(d []byte, _ int) error {
				out = append(out, string(d))
				return nil
			}); err != nil {
				t.Fatalf("ReadEventStream: %v", err)
			}
			return out
		}
		got := read(in)
		if bytes.ContainsRune(in, '\r') {
			return
		}
		crlf := read(bytes.ReplaceAll(in, []byte("\n"), []byte("\r\n")))
		if strings.Join(got, "\x00") != strings.Join(crlf, "\x00") || len(got) != len(crlf) {
			t.Fatalf("LF %q and CRLF %q differ", got, crlf)
		}
	})
}

// FuzzDecodeMessage: any message decodes to events or an error, never a
// panic, and every event it returns has an action and a time.
func FuzzDecodeMessage(f *testing.F) {
	for _, s := range []string{
		`{"result":{"results":[{"metadata":[],"labels":[],"user_data":"{\"action\":\"a.b.c\",\"eventTime\":\"2026-01-01T00:00:00Z\"}"}]}}`,
		`{"error":{"message":"x","code":1}}`, `{"warning":{}}`, `{"query_id":{"query_id":"q"}}`, `null`, `[]`,
		`{"result":{"results":[{"user_data":"{\"action\":\"x\"}","metadata":[{"key":"timestamp","value":"2026-01-01T00:00:00.5+0000"}]}]}}`,
	} {
		f.Add([]byte(s))
	}
	c := &CloudLogs{log: slog.New(slog.DiscardHandler)}
	f.Fuzz(func(t *testing.T, in []byte) {
		evs, _, err := c.decodeMessage(context.Background(), in, 1)
		if err != nil {
			return
		}
		for _, e := range evs {
			if e.Action == "" || e.Time.IsZero() && !strings.Contains(string(in), "0001-01-01") {
				t.Fatalf("event without action or time: %+v", e)
			}
		}
	})
}
