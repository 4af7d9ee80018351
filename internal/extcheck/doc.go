// Package extcheck keeps testdata/extmod, a module of its own that uses this
// module the way any other module would, in step with the sources: its tests
// fail when a godoc example or a Go block of README.md differs from its copy
// there, and rewrite the copies with -update:
//
//	go test ./internal/extcheck -update
//
// testdata/extmod itself is built, vetted and tested by test/extmod.sh.
package extcheck
