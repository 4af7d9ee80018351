package slsim_test

import (
	"flag"
	"os"
	"regexp"
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
		require.True(t, strings.HasPrefix(r.Source, "documented: ") || strings.HasPrefix(r.Source, "inferred: ") || strings.HasPrefix(r.Source, "invented"),
			"row %q: the source must start with \"documented: <source>\", \"inferred: \" or \"invented\"", r.Name)
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

// quotedSources is the provenance file whose "Quoted sources" table holds
// the quotes documented rows rest on.
const quotedSources = "../../../classic/testdata/contract/README.md"

var quoteRe = regexp.MustCompile(`"([^"]+)"`)

// sourceParts splits a Source at "; " outside parentheses, so that a
// parenthesised list of sources stays in its part.
func sourceParts(s string) []string {
	var parts []string
	depth, start := 0, 0
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '(':
			depth++
		case ')':
			depth--
		case ';':
			if depth == 0 && strings.HasPrefix(s[i:], "; ") {
				parts = append(parts, s[start:i])
				start = i + 2
			}
		}
	}
	return append(parts, s[start:])
}

// documentedQuotes returns the quotes of a row's documented parts, and how
// many documented parts have none.
func documentedQuotes(source string) (quotes []string, bare int) {
	for _, p := range sourceParts(source) {
		if !strings.HasPrefix(p, "documented: ") {
			continue
		}
		qs := quoteRe.FindAllStringSubmatch(p, -1)
		if len(qs) == 0 {
			bare++
		}
		for _, q := range qs {
			quotes = append(quotes, q[1])
		}
	}
	return quotes, bare
}

// TestContractQuotes fails on a row whose documented part quotes nothing,
// or quotes text that the provenance file does not hold word for word.
func TestContractQuotes(t *testing.T) {
	t.Parallel()
	b, err := os.ReadFile(quotedSources)
	require.NoError(t, err)
	text := string(b)
	i := strings.Index(text, "## Quoted sources")
	require.GreaterOrEqual(t, i, 0, "%s has a Quoted sources section", quotedSources)
	quoted := text[i:]
	documented, checked := 0, 0
	for _, r := range slsim.Contract {
		quotes, bare := documentedQuotes(r.Source)
		if bare > 0 {
			t.Errorf("row %s %q: a documented part quotes nothing; quote the source or mark it inferred", r.Kind, r.Name)
		}
		if len(quotes) > 0 || bare > 0 {
			documented++
		}
		for _, q := range quotes {
			checked++
			if !strings.Contains(quoted, `"`+q+`"`) {
				t.Errorf("row %s %q quotes %q, which %s does not hold verbatim", r.Kind, r.Name, q, quotedSources)
			}
		}
	}
	require.Positive(t, documented)
	t.Logf("%d rows, %d with a documented part, %d quotes found verbatim in %s", len(slsim.Contract), documented, checked, quotedSources)
}

// TestContractQuotesCanFail runs the check on rows that must fail it.
func TestContractQuotesCanFail(t *testing.T) {
	t.Parallel()
	q, bare := documentedQuotes("documented: SLDN (provisioning needs Active); invented: the key name")
	require.Empty(t, q)
	require.Equal(t, 1, bare, "a documented part without a quote is counted")
	q, bare = documentedQuotes(`documented: a page ("first"; "second"); inferred: "not checked"`)
	require.Equal(t, []string{"first", "second"}, q, "quotes of inferred parts are not required to be in the file")
	require.Zero(t, bare)
}
