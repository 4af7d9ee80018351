package cli

import (
	"errors"
	"fmt"
	"regexp"
	"sort"
	"strings"

	"github.com/e2eimage/e2eimage/crn"
	"github.com/e2eimage/e2eimage/e2e"
)

// PlanFlags maps the Go fields that e2e's errors about an invalid Plan or
// Cloud name (and a few phrases around them) to what sets them in the
// example commands: a flag, or the environment variable of a secret. COS
// and IAM name products as well as fields, and are left alone.
var PlanFlags = map[string]string{
	"IAM (the IAM client)": "-root-key-crn (IAM is reached in the key's account)",
	"Name":                 "-name",
	"OSCode":               "-os-code",
	"Object":               "-object",
	"KeyService":           "-root-key-crn",
	"RootKeyCRN":           "-root-key-crn",
	"DEK":                  "-key-file or -key-env",
	"DEKSize":              "the DEK size in bytes",
	"Prepare":              "-prepare",
	"ServiceID":            "-service-id",
	"COSInstanceID":        "-cos-instance",
	"COSKeyAuthorization":  "-cos-key-authorization",
	"ImportAPIKey":         "-import-api-key-file or E2E_IMPORT_API_KEY",
	"Bucket":               "-bucket",
	"Server":               "a server order",
	"Hostname":             "-hostname",
	"Domain":               "-domain",
	"PartSize":             "-part-size",
	"Concurrency":          "-concurrency",
	"ImageSize":            "-image-size",
	"AuditWait":            "-audit-wait",
	"Config.APIKey":        "IBMCLOUD_API_KEY or -api-key-file",
	"Config.Region":        "-region",
	"Config.COSInstance":   "-cos-instance",
}

var wordChar = regexp.MustCompile(`\w`)

// planErrPrefix begins each line of an error wrapping e2e.ErrPlan.
var planErrPrefix = e2e.ErrPlan.Error() + ": "

// FlagError returns err, when it is about an invalid plan (errors.Is
// e2e.ErrPlan), with its message rewritten to name the command's flags
// instead of Go fields, as names maps them (nil: PlanFlags); it still
// matches e2e.ErrPlan. Text in double quotes (a value the user gave) is
// left as it is. Any other error is returned unchanged.
func FlagError(err error, names map[string]string) error {
	if err == nil || !errors.Is(err, e2e.ErrPlan) {
		return err
	}
	if names == nil {
		names = PlanFlags
	}
	keys := make([]string, 0, len(names))
	for f := range names {
		keys = append(keys, f)
	}
	// Longest first: a phrase before its words, Config.APIKey before APIKey.
	sort.Slice(keys, func(i, j int) bool { return len(keys[i]) > len(keys[j]) })
	alts := make([]string, len(keys))
	for i, k := range keys {
		alts[i] = regexp.QuoteMeta(k)
		if wordChar.MatchString(k[:1]) {
			alts[i] = `\b` + alts[i]
		}
		if wordChar.MatchString(k[len(k)-1:]) {
			alts[i] += `\b`
		}
	}
	re := regexp.MustCompile(strings.Join(alts, "|"))
	var lines []string
	for _, line := range strings.Split(err.Error(), "\n") {
		line = strings.TrimPrefix(strings.TrimSpace(line), planErrPrefix)
		if line == "" {
			continue
		}
		// Rewrite only outside quotes: odd parts are quoted values.
		parts := strings.Split(line, `"`)
		for i := 0; i < len(parts); i += 2 {
			parts[i] = re.ReplaceAllStringFunc(parts[i], func(f string) string { return names[f] })
		}
		lines = append(lines, strings.Join(parts, `"`))
	}
	return &flagError{msg: "invalid flags: " + strings.Join(lines, "; "), err: err}
}

// flagError is an invalid plan told in flags.
type flagError struct {
	msg string
	err error
}

func (e *flagError) Error() string { return e.msg }
func (e *flagError) Unwrap() error { return e.err }

// ConnectError tells an error of ibmcloud.Connect, whose input comes from the
// flags, with the exit code it deserves: an invalid plan or root key CRN is
// a usage error (ExitUsage), told in flags; anything else is a failure (1).
func ConnectError(err error) (int, error) {
	switch {
	case errors.Is(err, e2e.ErrPlan):
		return ExitUsage, FlagError(err, nil)
	case errors.Is(err, crn.ErrInvalid):
		return ExitUsage, fmt.Errorf("-root-key-crn: %w", err)
	}
	return 1, err
}
