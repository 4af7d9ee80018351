package cli

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/e2eimage/e2eimage/classic"
)

func env(vars map[string]string) func(string) string {
	return Getenv(func(k string) (string, bool) { v, ok := vars[k]; return v, ok })
}

func TestParseExitCodes(t *testing.T) {
	var out bytes.Buffer
	fs := NewFlagSet("demo", "Usage: demo [flags]\n\nFlags:\n", &out)
	fs.Int("n", 3, "a `number`")

	exit, ok := Parse(fs, []string{"-help"})
	require.False(t, ok)
	require.Equal(t, ExitOK, exit)
	require.True(t, strings.HasPrefix(out.String(), "Usage: demo [flags]\n\nFlags:\n  -n number\n"), out.String())

	out.Reset()
	exit, ok = Parse(fs, []string{"-n", "x"})
	require.False(t, ok)
	require.Equal(t, ExitUsage, exit)
	require.Equal(t, "demo: invalid value \"x\" for flag -n: parse error (demo -help lists the flags)\n", out.String(),
		"a bad flag is one line, not the usage")

	fs = NewFlagSet("demo", "", &out)
	n := fs.Int("n", 3, "")
	exit, ok = Parse(fs, []string{"-n", "7", "rest"})
	require.True(t, ok)
	require.Equal(t, ExitOK, exit)
	require.Equal(t, 7, *n)
	require.Equal(t, []string{"rest"}, fs.Args())
}

func TestSetupFix(t *testing.T) {
	require.Equal(t, "create the service ID and its policies (-prepare)", SetupFix("create the service ID and its policies (iam.Client.Setup)", "-prepare"))
	require.Equal(t, "nothing to rewrite", SetupFix("nothing to rewrite", "-prepare"))
}

func TestFailerPrefixesOneLine(t *testing.T) {
	var out bytes.Buffer
	fail := Failer{Prefix: "order", W: &out}.Fail
	require.Equal(t, 2, fail(2, "unexpected arguments %q", []string{"a"}))
	require.Equal(t, 130, fail(130, "interrupted"))
	require.Equal(t, "order: unexpected arguments [\"a\"]\norder: interrupted\n", out.String())
}

func TestCloudFlagsHelp(t *testing.T) {
	var out bytes.Buffer
	fs := NewFlagSet("a", "", &out)
	var c CloudFlags
	c.Register(fs, Help{})
	fs.PrintDefaults()
	require.Contains(t, out.String(), "-api-key-file file\n    \tfile with the IBM Cloud API key (default: env IBMCLOUD_API_KEY)\n")
	require.Contains(t, out.String(), "-endpoints file\n    \tJSON file of service URLs (e.g. examples/cloudsim's output)\n")
	require.Contains(t, out.String(), "-private\n    \tuse the private endpoints\n")

	out.Reset()
	fs = NewFlagSet("b", "", &out)
	c = CloudFlags{}
	c.Register(fs, Help{NoAPIKeyFile: true, Private: "use the private classic endpoint", JSON: "print the events as JSON"})
	require.Nil(t, fs.Lookup("api-key-file"))
	fs.PrintDefaults()
	require.Contains(t, out.String(), "use the private classic endpoint")
	require.Contains(t, out.String(), "print the events as JSON")
	_, ok := Parse(fs, []string{"-endpoints", "e.json", "-private", "-json"})
	require.True(t, ok)
	require.Equal(t, CloudFlags{Endpoints: "e.json", Private: true, JSON: true}, c)
}

func TestLoadEndpoints(t *testing.T) {
	var c CloudFlags
	ep, err := c.LoadEndpoints()
	require.NoError(t, err)
	require.Zero(t, ep)

	c.Endpoints = filepath.Join(t.TempDir(), "ep.json")
	require.NoError(t, os.WriteFile(c.Endpoints, []byte(`{"softlayer":"http://127.0.0.1:1/sl"}`), 0o600))
	ep, err = c.LoadEndpoints()
	require.NoError(t, err)
	require.Equal(t, "http://127.0.0.1:1/sl", ep.SoftLayer)

	c.Endpoints = filepath.Join(t.TempDir(), "missing.json")
	_, err = c.LoadEndpoints()
	require.Error(t, err)
}

func TestAPIKeyFromFileOrEnv(t *testing.T) {
	var c CloudFlags
	_, err := c.APIKey(env(nil))
	require.ErrorIs(t, err, ErrNoAPIKey)
	require.Equal(t, "no API key: set IBMCLOUD_API_KEY or give -api-key-file", err.Error())

	key, err := c.APIKey(env(map[string]string{"IBMCLOUD_API_KEY": "  from-env\n"}))
	require.NoError(t, err)
	require.Equal(t, "from-env", key.Reveal())

	c.APIKeyFile = filepath.Join(t.TempDir(), "key")
	require.NoError(t, os.WriteFile(c.APIKeyFile, []byte("from-file\n"), 0o600))
	key, err = c.APIKey(env(map[string]string{"IBMCLOUD_API_KEY": "from-env"}))
	require.NoError(t, err)
	require.Equal(t, "from-file", key.Reveal(), "the file wins over the environment")

	c.APIKeyFile = filepath.Join(t.TempDir(), "missing")
	_, err = c.APIKey(env(map[string]string{"IBMCLOUD_API_KEY": "from-env"}))
	require.Error(t, err)
	require.False(t, errors.Is(err, ErrNoAPIKey))

	s, err := SecretFrom("", "")
	require.NoError(t, err)
	require.Nil(t, s)
}

func TestClassicCredentials(t *testing.T) {
	_, ok := SLCredentials(env(map[string]string{"SL_USERNAME": "u"}))
	require.False(t, ok, "both variables are needed")
	_, ok = ClassicCredentials(env(nil))
	require.False(t, ok)

	c, ok := ClassicCredentials(env(map[string]string{"SL_USERNAME": "u", "SL_API_KEY": "k", "IBMCLOUD_API_KEY": "i"}))
	require.True(t, ok)
	require.Equal(t, "u", c.Username)
	require.Equal(t, "k", c.APIKey.Reveal())

	c, ok = ClassicCredentials(env(map[string]string{"SL_USERNAME": "u", "IBMCLOUD_API_KEY": "i"}))
	require.True(t, ok)
	require.Equal(t, classic.IBMCloudUsername, c.Username)
	require.Equal(t, "i", c.APIKey.Reveal())
}

func TestListFlags(t *testing.T) {
	fs := NewFlagSet("l", "", &bytes.Buffer{})
	var ids IntList
	var names StringList
	fs.Var(&ids, "id", "")
	fs.Var(&names, "name", "")
	_, ok := Parse(fs, []string{"-id", "1", "-name", "a", "-id", "22", "-name", "b"})
	require.True(t, ok)
	require.Equal(t, IntList{1, 22}, ids)
	require.Equal(t, "[1 22]", ids.String())
	require.Equal(t, "a,b", names.String())
	exit, ok := Parse(fs, []string{"-id", "x"})
	require.False(t, ok)
	require.Equal(t, ExitUsage, exit)
}
