package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"regexp"
	"strings"

	"github.com/e2eimage/e2eimage/e2e"
)

// templateFlags are the flags of a run from an existing image template.
type templateFlags struct {
	from         string // -from-template NAME|ID
	keepExport   bool   // -keep-export
	exportObject string // -export-object
	cleanup      bool   // -cleanup
}

func addTemplateFlags(fs *flag.FlagSet, t *templateFlags) {
	fs.StringVar(&t.from, "from-template", "", "encrypt an existing classic image `NAME or ID` instead of -image: export it to the bucket, "+
		"encrypt the boot disk as it streams from COS into the new object (nothing on local disk), import it, delete the plaintext export "+
		"(the name, note and OS code default to the template's)")
	fs.BoolVar(&t.keepExport, "keep-export", false, "-from-template: keep the plaintext objects the export writes (default: deleted)")
	fs.StringVar(&t.exportObject, "export-object", "", "-from-template: the export's file `name` in the bucket (default <name>"+e2e.ExportSuffix+")")
	fs.BoolVar(&t.cleanup, "cleanup", false, "delete the plaintext export that the run of -state left in the bucket, and exit")
}

// applyTemplate fills the plan from the template flags instead of an
// image. The name, note and OS code are left to the template unless given.
func applyTemplate(p *e2e.Plan, c *config) {
	p.SourceTemplate, p.KeepExport, p.ExportObject = c.tpl.from, c.tpl.keepExport, c.tpl.exportObject
	p.Image = nil
	if !isSet(c, "name") {
		p.Name = ""
	}
	if !isSet(c, "note") {
		p.Note = ""
	}
	if !isSet(c, "os-code") {
		p.OSCode = ""
	}
}

var unsafeName = regexp.MustCompile(`[^A-Za-z0-9._-]+`)

// defaultState is the default state file name in IBM Cloud mode:
// <name>.e2e-state.json, or <template>.e2e-state.json for a run from a
// template without -name.
func defaultState(c *config) string {
	name := c.name
	if name == "" && c.tpl.from != "" {
		name = strings.Trim(unsafeName.ReplaceAllString(c.tpl.from, "_"), "._")
		if name == "" {
			name = "template"
		}
		name += e2e.SourceNameSuffix
	}
	return name + ".e2e-state.json"
}

// runCleanup deletes what e2e.Cleanup finds and prints what it did.
func runCleanup(ctx context.Context, plan e2e.Plan, c *config, e env) int {
	res, err := e2e.Cleanup(ctx, plan)
	if res != nil {
		if c.jsonOut {
			enc := json.NewEncoder(e.stdout)
			enc.SetIndent("", "  ")
			_ = enc.Encode(res)
		} else {
			for _, k := range res.Deleted {
				fmt.Fprintf(e.stdout, "deleted plaintext export %s\n", k)
			}
			for _, k := range res.Remaining {
				fmt.Fprintf(e.stdout, "NOT deleted: %s\n", k)
			}
			if len(res.Deleted)+len(res.Remaining) == 0 {
				fmt.Fprintln(e.stdout, "no plaintext export left by this run")
			}
		}
	}
	if err != nil {
		fmt.Fprintln(e.stderr, "e2e:", err)
		return exitFailure
	}
	return exitOK
}
