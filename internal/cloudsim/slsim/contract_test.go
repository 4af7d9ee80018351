package slsim_test

import (
	"flag"
	"os"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/e2eimage/e2eimage/internal/cloudsim/slsim"
)

var updateREADME = flag.Bool("update-readme", false, "rewrite the contract table of README.md from slsim.Contract")

func contractTable() string {
	var b strings.Builder
	for _, r := range slsim.Contract {
		b.WriteString("| " + r.Kind + " | `" + r.Name + "` | " + r.Rule + " | " + r.Source + " |\n")
	}
	return b.String()
}

// TestContractTableInREADME keeps README.md's contract table equal to
// slsim.Contract and checks that every row is tagged documented or
// invented.
func TestContractTableInREADME(t *testing.T) {
	t.Parallel()
	for _, r := range slsim.Contract {
		require.True(t, strings.HasPrefix(r.Source, "documented: ") || strings.HasPrefix(r.Source, "invented"),
			"row %q: the source must start with \"documented: <source>\" or \"invented\"", r.Name)
		require.NotEmpty(t, r.Rule, r.Name)
		require.NotContains(t, r.Rule+r.Source+r.Name, "|", "a cell cannot hold a pipe")
	}
	b, err := os.ReadFile("README.md")
	require.NoError(t, err)
	readme := string(b)
	const head = "| kind | name | rule | source |\n| --- | --- | --- | --- |\n"
	start := strings.Index(readme, head)
	require.GreaterOrEqual(t, start, 0, "README.md has the contract table")
	start += len(head)
	end := strings.Index(readme[start:], "\n\n")
	require.GreaterOrEqual(t, end, 0)
	end += start + 1
	if *updateREADME {
		readme = readme[:start] + contractTable() + readme[end:]
		require.NoError(t, os.WriteFile("README.md", []byte(readme), 0o644))
		return
	}
	require.Equal(t, contractTable(), readme[start:end], "run go test -run TestContractTableInREADME -update-readme")
}
