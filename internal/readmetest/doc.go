// Package readmetest holds the test that runs the shell commands of the
// repository's README.md as they are written, so that the README stays a
// contract: a command that stops working, or a flag that no longer exists,
// fails the build. See readme_test.go for the conventions.
package readmetest
