package secret

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"testing"
)

func TestDEKNeverPrints(t *testing.T) {
	t.Parallel()
	raw := bytes.Repeat([]byte{0xA5}, DEK512)
	d, err := NewDEK(raw)
	if err != nil {
		t.Fatal(err)
	}
	s := NewString("very-secret-api-key-0123456789")
	var logs bytes.Buffer
	log := slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	log.Info("x", "dek", d, "key", s)
	type wrapper struct {
		D *DEK
		S *String
	}
	js, _ := json.Marshal(wrapper{d, s})
	outs := []string{
		fmt.Sprint(d), fmt.Sprintf("%v %+v %#v %x %X %s %q %d", d, d, d, d, d, d, d, d),
		fmt.Sprintf("%v %+v %#v %x %s %q", s, s, s, s, s, s),
		fmt.Sprintf("%#v", wrapper{d, s}), string(js), logs.String(),
		fmt.Errorf("wrap: %v %v", d, s).Error(),
	}
	for _, o := range outs {
		for _, needle := range []string{"a5a5", "A5A5", "\xa5\xa5", "very-secret", "pSlaX"} {
			if strings.Contains(o, needle) {
				t.Fatalf("secret leaked in %q", o)
			}
		}
		if !strings.Contains(o, Redacted) {
			t.Fatalf("no redaction marker in %q", o)
		}
	}
}

func TestDEKSizesAndZero(t *testing.T) {
	t.Parallel()
	for _, n := range []int{0, 16, 31, 33, 48, 63, 65, 128} {
		if _, err := NewDEK(make([]byte, n)); err == nil {
			t.Errorf("NewDEK accepted %d bytes", n)
		}
		if _, err := GenerateDEK(n); err == nil {
			t.Errorf("GenerateDEK accepted %d bytes", n)
		}
	}
	d, err := GenerateDEK(DEK256)
	if err != nil || d.Len() != 32 {
		t.Fatalf("GenerateDEK: %v %d", err, d.Len())
	}
	b := d.Bytes()
	if bytes.Equal(b, make([]byte, 32)) {
		t.Fatal("generated DEK is all zero")
	}
	d.Zero()
	if !bytes.Equal(b, make([]byte, 32)) || d.Len() != 0 {
		t.Fatal("Zero left key material behind")
	}
	s := NewString("abc")
	if s.Reveal() != "abc" || s.Empty() {
		t.Fatal("Reveal")
	}
	s.Zero()
	if !s.Empty() {
		t.Fatal("String.Zero")
	}
}
