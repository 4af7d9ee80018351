package testenv

import (
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// The repository must stand alone: every document a file cites is inside
// it, named by a path relative to the citing file, and every section a
// citation names exists in that document.

// docRef matches a citation of one of the project's documents (docNames),
// with the relative path in front of it (from a package directory, "../docs/"
// and the document's name).
var docRef = regexp.MustCompile(`((?:\.\./)*(?:[\w.-]+/)*)(` + strings.Join(docNames, "|") + `)\.md`)

// docNames are the documents in docs/, without their .md suffix. They are
// spelled in parts, like the examples in TestCitationPatterns, so that a
// search of the repository for citations finds only real ones.
var docNames = []string{"FOR" + "MAT", "CLO" + "UD", "DES" + "IGN"}

// outside matches paths that leave the repository for the material the
// documents and vectors were made from.
var outside = regexp.MustCompile(`(?:\.\./)+sha` + `red\b|/work/sha` + `red`)

// sectionList matches what may follow a citation to name sections:
// " §1.5", " section 7.2", " sections 6.1 and 8", " §3.3, §8", " 7.2".
var sectionList = regexp.MustCompile(`^,?\s*((?:(?:§|sections?|and|to|,|\s)*\d+(?:\.\d+)?)+)`)

// namedSection matches a section cited by its title, as in a citation of
// the format document followed by `, "Encryption"`.
var namedSection = regexp.MustCompile(`^,?\s*"([^"]+)"`)

var sectionNumber = regexp.MustCompile(`\d+(?:\.\d+)?`)

// lineBreak matches a line break with the comment leader of the next line.
var lineBreak = regexp.MustCompile(`\s*\n\s*(?://|#)?\s*`)

// numberedHeading splits a heading such as "1.5 Key states" or "2. IBM".
var numberedHeading = regexp.MustCompile(`^(\d+(?:\.\d+)?)\.?\s+(.*)$`)

// citedFiles lists the repository's text files that may cite documents:
// Go sources, Markdown, shell scripts and the CI script, but not fuzz
// corpora or binary vectors.
func citedFiles(t *testing.T, root string) []string {
	t.Helper()
	var files []string
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if d.Name() == ".git" || (d.Name() == "fuzz" && filepath.Base(filepath.Dir(path)) == "testdata") {
				return filepath.SkipDir
			}
			return nil
		}
		switch filepath.Ext(path) {
		case ".go", ".md", ".sh", ".txt", ".txtar":
			files = append(files, path)
		default:
			if filepath.Base(filepath.Dir(path)) == ".ci" {
				files = append(files, path)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return files
}

// headings returns the section numbers ("1", "1.5") and titles of a
// Markdown document.
func headings(t *testing.T, path string) (numbers, titles []string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if !strings.HasPrefix(line, "#") {
			continue
		}
		title := strings.TrimSpace(strings.TrimLeft(line, "#"))
		if n := numberedHeading.FindStringSubmatch(title); n != nil {
			numbers = append(numbers, n[1])
			title = n[2]
		}
		titles = append(titles, strings.Trim(title, "`"))
	}
	return numbers, titles
}

// TestDocumentCitationsResolve proves that no file cites material outside
// the repository and that every citation of one of the documents in
// ../../docs names an existing file by its path from the citing file, and
// an existing section when it names one.
func TestDocumentCitationsResolve(t *testing.T) {
	root := RepoRoot()
	files := citedFiles(t, root)
	if len(files) < 100 {
		t.Fatalf("found only %d text files under %s", len(files), root)
	}
	type docInfo struct{ numbers, titles []string }
	docs := map[string]docInfo{}
	for _, name := range docNames {
		n, ti := headings(t, filepath.Join(root, "docs", name+".md"))
		docs[filepath.Join(root, "docs", name+".md")] = docInfo{n, ti}
	}
	if cloud := docs[filepath.Join(root, "docs", docNames[1]+".md")]; len(cloud.numbers) < 30 {
		t.Fatalf("the cloud document has too few numbered sections: %v", cloud.numbers)
	}

	citations, sections := 0, 0
	for _, path := range files {
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		rel, _ := filepath.Rel(root, path)
		// Join wrapped comment and Markdown lines so that a citation
		// split over two lines is read whole.
		text := string(b)
		if !strings.Contains(text, ".md") && !outside.MatchString(text) {
			continue
		}
		text = lineBreak.ReplaceAllString(text, " ")
		if m := outside.FindString(text); m != "" {
			t.Errorf("%s: refers to %q, outside the repository", rel, m)
		}
		for _, m := range docRef.FindAllStringSubmatchIndex(text, -1) {
			citations++
			cited := text[m[0]:m[1]]
			target := filepath.Clean(filepath.Join(filepath.Dir(path), cited))
			info, ok := docs[target]
			if !ok {
				t.Errorf("%s: cites %q, which is not docs/%s.md as seen from %s", rel, cited, text[m[4]:m[5]], filepath.Dir(rel))
				continue
			}
			tail := text[m[1]:min(len(text), m[1]+80)]
			if s := sectionList.FindStringSubmatch(tail); s != nil {
				for _, n := range sectionNumber.FindAllString(s[1], -1) {
					sections++
					if !slices.Contains(info.numbers, n) {
						t.Errorf("%s: cites section %s of %s, which has no such section", rel, n, cited)
					}
				}
			} else if s := namedSection.FindStringSubmatch(tail); s != nil {
				sections++
				if !slices.Contains(info.titles, s[1]) {
					t.Errorf("%s: cites section %q of %s, which has no such section", rel, s[1], cited)
				}
			}
		}
	}
	t.Logf("%d files, %d citations, %d cited sections checked", len(files), citations, sections)
	if citations < 50 || sections < 40 {
		t.Errorf("only %d citations and %d cited sections found; the patterns no longer match the repository", citations, sections)
	}
}

// TestCitationPatterns proves the patterns above catch what they must.
func TestCitationPatterns(t *testing.T) {
	// Built from parts so that a search of the repository for citations
	// outside it finds none here.
	sh := "sha" + "red"
	for _, s := range []string{"../" + sh + "/x", "see ../../" + sh + "/testdata/x", "/work/" + sh + "/x"} {
		if !outside.MatchString(s) {
			t.Errorf("outside does not match %q", s)
		}
	}
	if outside.MatchString("a machine " + sh + " with other work") {
		t.Error("outside matches ordinary prose")
	}
	for in, want := range map[string]string{
		" §1.5).":                  "1.5",
		" section 7.2, from":       "7.2",
		" sections 6.1 and 8).":    "6.1 8",
		" §3.3, §8).":              "3.3 8",
		" sections 5 to 7.":        "5 7",
		" 7.2, read as binary GB":  "7.2",
		"): a dynamic VHD":         "",
		", \"Encryption\").":       "",
		" closely enough that the": "",
	} {
		got := ""
		if m := sectionList.FindStringSubmatch(in); m != nil {
			got = strings.Join(sectionNumber.FindAllString(m[1], -1), " ")
		}
		if got != want {
			t.Errorf("sections cited by %q = %q, want %q", in, got, want)
		}
	}
	if m := namedSection.FindStringSubmatch(`, "Encryption").`); m == nil || m[1] != "Encryption" {
		t.Errorf("namedSection = %q", m)
	}
}
