// This directory is a module of its own only so that the Go module zip of
// github.com/e2eimage/e2eimage (what "go get" downloads) leaves these 28 MB of
// test vectors out: a directory holding a go.mod is not part of the parent
// module. It contains no Go code.
module github.com/e2eimage/e2eimage/testdata/vhd-reference

go 1.26.0
