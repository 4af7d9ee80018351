package progressbar

import (
	"strings"
	"testing"
	"time"
)

func TestPlainLinesEveryTenPercent(t *testing.T) {
	var out strings.Builder
	b := New(&out)
	for done := int64(0); done <= 1000; done += 7 {
		b.Update("upload", done, 1000)
	}
	b.Update("upload", 1000, 1000)
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 11 { // 0%, 10%, ..., 100%
		t.Fatalf("%d lines:\n%s", len(lines), out.String())
	}
	if !strings.Contains(lines[10], "upload: 100% (1.0 kB of 1.0 kB)") {
		t.Fatalf("last line %q", lines[10])
	}
	if strings.Contains(out.String(), "\r") {
		t.Fatal("carriage return outside a terminal")
	}
}

func TestNewLabelRestarts(t *testing.T) {
	var out strings.Builder
	b := New(&out)
	b.Update("scan", 100, 100)
	b.Update("upload", 0, 100)
	b.Update("upload", -5, 0) // unknown total: ignored
	b.Break()
	b.Update("upload", 50, 100)
	got := out.String()
	for _, want := range []string{"scan: 100%", "upload: 0%", "upload: 50%"} {
		if !strings.Contains(got, want) {
			t.Fatalf("missing %q in:\n%s", want, got)
		}
	}
}

func TestTerminalRedrawsInPlace(t *testing.T) {
	var out strings.Builder
	now := time.Unix(0, 0)
	b := &Bar{w: &out, tty: true, now: func() time.Time { return now }}
	b.Update("upload", 10, 100)
	b.Update("upload", 20, 100) // within redrawEvery: skipped
	now = now.Add(time.Second)
	b.Update("upload", 100, 100)
	b.Break()
	got := out.String()
	if strings.Count(got, "\r") != 2 {
		t.Fatalf("redraws: %q", got)
	}
	if !strings.HasSuffix(got, "\n") || !strings.Contains(got, "100%") {
		t.Fatalf("output %q", got)
	}
}

func TestUnits(t *testing.T) {
	for n, want := range map[int64]string{999: "999 B", 1500: "1.5 kB", 2_500_000: "2.5 MB", 3_210_000_000: "3.21 GB"} {
		if got := Size(n); got != want {
			t.Errorf("Size(%d) = %q, want %q", n, got, want)
		}
	}
	if got := Rate(10_000_000, 2*time.Second); got != "5.0 MB/s" {
		t.Errorf("Rate = %q", got)
	}
}
