package exampletest

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

const sample = `package p_test

import "fmt"

// ExampleA prints two lines.
func ExampleA() {
	fmt.Println("a")
	// A comment that is not the marker.

	// On a fresh simulated account, this prints:
	// a
	//   indented
}

func ExampleB() {
	// Compile-only: no marker.
}

func ExampleC() {
	fmt.Println("c") // trailing
	// Some words first.
	// On a fresh simulated account, this prints:
	// c
}

func helper() {
	// On a fresh simulated account, this prints:
	// not an example
}
`

func TestExpectedOutputs(t *testing.T) {
	path := filepath.Join(t.TempDir(), "example_test.go")
	if err := os.WriteFile(path, []byte(sample), 0o600); err != nil {
		t.Fatal(err)
	}
	want, order, err := ExpectedOutputs(path)
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(order) != "[ExampleA ExampleC]" {
		t.Fatalf("order %v", order)
	}
	if got := normalize(want["ExampleA"]); got != "a\n  indented" {
		t.Fatalf("ExampleA: %q", got)
	}
	if got := normalize(want["ExampleC"]); got != "c" {
		t.Fatalf("ExampleC: %q", got)
	}
	if _, ok := want["ExampleB"]; ok {
		t.Fatal("ExampleB has no marker")
	}
}

func TestExpectedOutputsTwoMarkers(t *testing.T) {
	path := filepath.Join(t.TempDir(), "example_test.go")
	src := "package p\n\nfunc ExampleX() {\n\t// " + Marker + "\n\t// 1\n\tx()\n\t// " + Marker + "\n\t// 2\n}\n"
	if err := os.WriteFile(path, []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, _, err := ExpectedOutputs(path); err == nil {
		t.Fatal("two markers in one example were accepted")
	}
}

func TestCaptureStdout(t *testing.T) {
	saved := os.Stdout
	got, err := captureStdout(func() { fmt.Println("hello"); fmt.Print("world") })
	if err != nil {
		t.Fatal(err)
	}
	if got != "hello\nworld" {
		t.Fatalf("captured %q", got)
	}
	if os.Stdout != saved {
		t.Fatal("os.Stdout was not restored")
	}
	func() {
		defer func() { _ = recover() }()
		_, _ = captureStdout(func() { panic("boom") })
	}()
	if os.Stdout != saved {
		t.Fatal("os.Stdout was not restored after a panic")
	}
}

// Every variable of Env names a field that the simulator describes.
func TestEnvFieldsExist(t *testing.T) {
	info := StartSimulator(t, Sim{Seed: 1})
	for k, field := range Env {
		if info[field] == "" {
			t.Errorf("%s: the simulator's description has no %q", k, field)
		}
	}
}
