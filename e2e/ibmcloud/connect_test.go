package ibmcloud_test

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/e2eimage/e2eimage/cos"
	"github.com/e2eimage/e2eimage/e2e"
	"github.com/e2eimage/e2eimage/e2e/ibmcloud"
	"github.com/e2eimage/e2eimage/secret"
	"github.com/e2eimage/e2eimage/vhdcrypt"
)

func TestSecretFiles(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "key")
	require.NoError(t, ibmcloud.WriteSecretFile(path, secret.NewString("s3cr3t-api-key")))
	fi, err := os.Stat(path)
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o600), fi.Mode().Perm())
	got, err := ibmcloud.ReadSecretFile(path)
	require.NoError(t, err)
	require.Equal(t, "s3cr3t-api-key", got.Reveal())

	err = ibmcloud.WriteSecretFile(path, secret.NewString("other"))
	require.ErrorIs(t, err, fs.ErrExist, "an existing file is never replaced")
	got, err = ibmcloud.ReadSecretFile(path)
	require.NoError(t, err)
	require.Equal(t, "s3cr3t-api-key", got.Reveal())

	empty := filepath.Join(dir, "empty")
	require.NoError(t, os.WriteFile(empty, []byte(" \n"), 0o600))
	_, err = ibmcloud.ReadSecretFile(empty)
	require.Error(t, err)
	_, err = ibmcloud.ReadSecretFile(filepath.Join(dir, "none"))
	require.ErrorIs(t, err, fs.ErrNotExist)

	// A secret file's error never holds its content: too large, or
	// unreadable as a file.
	const content = "s3cr3t-api-key-in-a-file-that-is-too-large "
	big := filepath.Join(dir, "big")
	require.NoError(t, os.WriteFile(big, []byte(strings.Repeat(content, (1<<20)/len(content))), 0o600))
	_, err = ibmcloud.ReadSecretFile(big)
	require.Error(t, err)
	require.NotContains(t, err.Error(), "s3cr3t", "the error of a secret file that is too large shows its content")
	_, err = ibmcloud.ReadSecretFile(dir) // a directory: the read fails
	require.Error(t, err)
	require.NotContains(t, err.Error(), "s3cr3t")
}

func TestLoadEndpoints(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ep.json")
	require.NoError(t, os.WriteFile(path, []byte(`{"iam":"http://127.0.0.1:1","softlayer":"http://127.0.0.1:2/rest/v3.1","api_key":"ignored"}`), 0o600))
	ep, err := ibmcloud.LoadEndpoints(path)
	require.NoError(t, err)
	require.Equal(t, ibmcloud.Endpoints{IAM: "http://127.0.0.1:1", SoftLayer: "http://127.0.0.1:2/rest/v3.1"}, ep)
	require.NoError(t, os.WriteFile(path, []byte(`{`), 0o600))
	_, err = ibmcloud.LoadEndpoints(path)
	require.Error(t, err)
}

func TestConnectChecksItsInput(t *testing.T) {
	_, err := ibmcloud.Connect(ibmcloud.Config{})
	require.ErrorIs(t, err, e2e.ErrPlan, "no API key")
	_, err = ibmcloud.Connect(ibmcloud.Config{APIKey: secret.NewString("k")})
	require.ErrorIs(t, err, e2e.ErrPlan, "neither a key CRN nor a region")
	_, err = ibmcloud.Connect(ibmcloud.Config{APIKey: secret.NewString("k"), RootKeyCRN: "crn:nope"})
	require.Error(t, err)
	_, err = ibmcloud.Connect(ibmcloud.Config{APIKey: secret.NewString("k"), Region: "us-south", Endpoints: ibmcloud.Endpoints{S3: "http://example.com"}})
	require.ErrorIs(t, err, cos.ErrInsecureEndpoint, "plain http to a remote host is refused")

	// Without a key CRN: COS and classic only (what order and audit need).
	c, err := ibmcloud.Connect(ibmcloud.Config{APIKey: secret.NewString("k"), Region: "eu-de", Private: true})
	require.NoError(t, err)
	defer c.Close()
	require.Nil(t, c.Keys)
	require.Nil(t, c.IAM)
	require.Equal(t, "https://s3.private.eu-de.cloud-object-storage.appdomain.cloud", c.COS.Endpoint())
	require.Equal(t, "https://api.service.softlayer.com/rest/v3.1", c.Classic.Endpoint())
}

// A secret file that others can write is refused (someone else could have
// put their key there); one that others can read is read, and
// vhdcrypt.LooseKeyFileMode says so for a warning.
func TestSecretFileModes(t *testing.T) {
	dir := t.TempDir()
	for _, c := range []struct {
		mode    os.FileMode
		refused bool
	}{{0o600, false}, {0o644, false}, {0o620, true}, {0o602, true}, {0o666, true}} {
		p := filepath.Join(dir, fmt.Sprintf("key-%o", c.mode))
		require.NoError(t, os.WriteFile(p, []byte("k\n"), 0o600))
		require.NoError(t, os.Chmod(p, c.mode))
		got, err := ibmcloud.ReadSecretFile(p)
		if c.refused {
			require.ErrorIs(t, err, ibmcloud.ErrWritableSecretFile, "mode %o", c.mode)
			require.Nil(t, got)
			continue
		}
		require.NoError(t, err, "mode %o", c.mode)
		loose, err := vhdcrypt.LooseKeyFileMode(p)
		require.NoError(t, err)
		require.Equal(t, c.mode&0o077 != 0, loose)
	}
}
