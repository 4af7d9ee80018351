// Package cli holds the command-line plumbing the example commands under
// examples/ share: the flag set with its usage text and exit codes, the
// cloud flags (-api-key-file, -endpoints, -private, -json), prefixed error
// lines, repeatable list flags and the credentials read from the
// environment (IBMCLOUD_API_KEY, SL_USERNAME, SL_API_KEY).
//
// It does not connect to anything (ibmcloud.Connect does), does not print any
// result and does not read os.Args or the process environment itself:
// every function takes the writer and the lookup function the command was
// given, so the commands stay testable. It is internal to the module and
// only for the examples.
package cli

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"github.com/e2eimage/e2eimage/classic"
	"github.com/e2eimage/e2eimage/e2e/ibmcloud"
	"github.com/e2eimage/e2eimage/secret"
)

// Exit codes every example command uses.
const (
	ExitOK    = 0 // success; also -help
	ExitUsage = 2 // a bad flag or a missing argument
)

// NewFlagSet returns a flag set named name that reports errors instead of
// exiting, writes to stderr and whose -help prints usage followed by the
// flags' defaults.
func NewFlagSet(name, usage string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(fs.Output(), usage); fs.PrintDefaults() }
	return fs
}

// Parse parses args into fs. When ok is false the command must return
// exit at once: ExitOK for -help (the usage was printed), ExitUsage for a
// bad flag (one line was printed: the error and the way to -help, so that
// the error does not scroll away behind the usage).
func Parse(fs *flag.FlagSet, args []string) (exit int, ok bool) {
	out := fs.Output()
	fs.SetOutput(io.Discard)
	err := fs.Parse(args)
	fs.SetOutput(out)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fs.Usage()
			return ExitOK, false
		}
		fmt.Fprintf(out, "%s: %v (%s -help lists the flags)\n", fs.Name(), err, fs.Name())
		return ExitUsage, false
	}
	return ExitOK, true
}

// SetupFix rewrites a preflight check's fix that names the library's way
// to create what is missing (iam.Client.Setup) in the command's words:
// how, such as "-prepare".
func SetupFix(fix, how string) string {
	return strings.ReplaceAll(fix, "iam.Client.Setup", how)
}

// Failer writes a command's error lines, "<Prefix>: <message>\n", to W.
type Failer struct {
	Prefix string    // the command's name, e.g. "order"
	W      io.Writer // usually standard error
}

// Fail writes one error line formatted as by fmt.Fprintf and returns code,
// so that a command can `return fail(2, "...")`.
func (f Failer) Fail(code int, format string, a ...any) int {
	fmt.Fprintf(f.W, f.Prefix+": "+format+"\n", a...)
	return code
}

// Getenv returns a function that reads a variable with lookup and trims
// the spaces around its value; unset reads as "".
func Getenv(lookup func(string) (string, bool)) func(string) string {
	return func(k string) string { v, _ := lookup(k); return strings.TrimSpace(v) }
}

// Help holds the help texts of CloudFlags' flags; an empty text takes the
// default shown in its comment.
type Help struct {
	// NoAPIKeyFile leaves -api-key-file out (commands that read the
	// classic credentials only).
	NoAPIKeyFile bool
	APIKeyFile   string // "`file` with the IBM Cloud API key (default: env IBMCLOUD_API_KEY)"
	Endpoints    string // "JSON `file` of service URLs (e.g. examples/cloudsim's output)"
	Private      string // "use the private endpoints"
	JSON         string // "print the result as JSON"
}

// CloudFlags are the flags every cloud command has.
type CloudFlags struct {
	APIKeyFile string // -api-key-file
	Endpoints  string // -endpoints
	Private    bool   // -private
	JSON       bool   // -json
}

// Register defines the flags on fs, with the help texts of h.
func (c *CloudFlags) Register(fs *flag.FlagSet, h Help) {
	or := func(s, def string) string {
		if s == "" {
			return def
		}
		return s
	}
	if !h.NoAPIKeyFile {
		fs.StringVar(&c.APIKeyFile, "api-key-file", "", or(h.APIKeyFile, "`file` with the IBM Cloud API key (default: env IBMCLOUD_API_KEY)"))
	}
	fs.StringVar(&c.Endpoints, "endpoints", "", or(h.Endpoints, "JSON `file` of service URLs (e.g. examples/cloudsim's output)"))
	fs.BoolVar(&c.Private, "private", false, or(h.Private, "use the private endpoints"))
	fs.BoolVar(&c.JSON, "json", false, or(h.JSON, "print the result as JSON"))
}

// LoadEndpoints reads the -endpoints file; without -endpoints it returns
// the zero Endpoints (IBM Cloud's public or private URLs).
func (c *CloudFlags) LoadEndpoints() (ibmcloud.Endpoints, error) {
	if c.Endpoints == "" {
		return ibmcloud.Endpoints{}, nil
	}
	return ibmcloud.LoadEndpoints(c.Endpoints)
}

// ErrNoAPIKey is returned by APIKey when neither -api-key-file nor
// IBMCLOUD_API_KEY gives a key.
var ErrNoAPIKey = errors.New("no API key: set IBMCLOUD_API_KEY or give -api-key-file")

// APIKey returns the IBM Cloud API key from -api-key-file, else from
// IBMCLOUD_API_KEY; ErrNoAPIKey when there is neither.
func (c *CloudFlags) APIKey(getenv func(string) string) (*secret.String, error) {
	key, err := SecretFrom(c.APIKeyFile, getenv("IBMCLOUD_API_KEY"))
	if err != nil {
		return nil, err
	}
	if key.Empty() {
		return nil, ErrNoAPIKey
	}
	return key, nil
}

// SecretFrom reads a secret from file when given (ibmcloud.ReadSecretFile),
// else takes value (an environment variable's); nil when there is neither.
func SecretFrom(file, value string) (*secret.String, error) {
	if file != "" {
		return ibmcloud.ReadSecretFile(file)
	}
	if value == "" {
		return nil, nil
	}
	return secret.NewString(value), nil
}

// SLCredentials returns the classic credentials of SL_USERNAME and
// SL_API_KEY; false unless both are set.
func SLCredentials(getenv func(string) string) (classic.Credentials, bool) {
	u, k := getenv("SL_USERNAME"), getenv("SL_API_KEY")
	if u == "" || k == "" {
		return classic.Credentials{}, false
	}
	return classic.ClassicAPIKey(u, secret.NewString(k)), true
}

// ClassicCredentials returns SLCredentials when both variables are set,
// else the IBM Cloud API key of IBMCLOUD_API_KEY; false when there is
// neither.
func ClassicCredentials(getenv func(string) string) (classic.Credentials, bool) {
	if creds, ok := SLCredentials(getenv); ok {
		return creds, true
	}
	if k := getenv("IBMCLOUD_API_KEY"); k != "" {
		return classic.IBMCloudAPIKey(secret.NewString(k)), true
	}
	return classic.Credentials{}, false
}

// IntList is a repeatable integer flag.
type IntList []int

// String implements flag.Value.
func (l *IntList) String() string { return fmt.Sprint(*l) }

// Set implements flag.Value: it appends one integer.
func (l *IntList) Set(s string) error {
	n, err := strconv.Atoi(s)
	if err != nil {
		return err
	}
	*l = append(*l, n)
	return nil
}

// StringList is a repeatable string flag.
type StringList []string

// String implements flag.Value.
func (l *StringList) String() string { return strings.Join(*l, ",") }

// Set implements flag.Value: it appends one string.
func (l *StringList) Set(s string) error { *l = append(*l, s); return nil }

// StateExists reports whether path names a state file on disk, so that a
// command offers to resume only what a run recorded.
func StateExists(path string) bool {
	if path == "" {
		return false
	}
	fi, err := os.Stat(path)
	return err == nil && fi.Mode().IsRegular()
}
