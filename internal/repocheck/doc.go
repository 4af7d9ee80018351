// Package repocheck holds tests about the repository as a whole, run by
// go test like any other package:
//
//   - TestOneHomePerFact: each IBM fact (OS reference codes, import regions
//     and data centers, the import size limit, bucket resiliency rules,
//     export naming, CRN parsing, the check/report types) is defined in
//     one package only; see facts_test.go for how each is recognised.
//   - TestDependencyRules: the layering ../../docs/DESIGN.md states, as a table
//     of rules over the import graph (go list -deps), in the style of
//     go-containerregistry's internal/depcheck.
//   - TestPackageLists: doc.go and ../../docs/DESIGN.md name every package that
//     go list ./... reports, and no package that does not exist.
//
// The package has no code of its own.
package repocheck
