package vhdcrypt_test

import (
	"encoding/base64"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/e2eimage/e2eimage/vhdcrypt"
)

func TestKeyFiles(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	for _, size := range []int{vhdcrypt.AES128XTS, vhdcrypt.AES256XTS} {
		dek, err := vhdcrypt.NewDEK(size)
		require.NoError(t, err)
		path := filepath.Join(dir, fmt.Sprintf("k%d.bin", size))
		require.NoError(t, vhdcrypt.WriteKeyFile(path, dek))
		fi, err := os.Stat(path)
		require.NoError(t, err)
		require.Equal(t, os.FileMode(0o600), fi.Mode().Perm())
		require.Equal(t, int64(size), fi.Size())
		loose, err := vhdcrypt.LooseKeyFileMode(path)
		require.NoError(t, err)
		require.False(t, loose)

		back, err := vhdcrypt.ReadKeyFile(path)
		require.NoError(t, err)
		require.Equal(t, dek.Bytes(), back.Bytes())

		// Never overwritten.
		other, err := vhdcrypt.NewDEK(size)
		require.NoError(t, err)
		require.ErrorIs(t, vhdcrypt.WriteKeyFile(path, other), os.ErrExist)
		again, err := vhdcrypt.ReadKeyFile(path)
		require.NoError(t, err)
		require.Equal(t, dek.Bytes(), again.Bytes())

		// The DEK never prints.
		require.Equal(t, "[REDACTED]", fmt.Sprintf("%v %x", dek, dek)[:10])
	}

	for _, n := range []int{0, 16, 33, 65, 100} {
		path := filepath.Join(dir, fmt.Sprintf("bad%d", n))
		require.NoError(t, os.WriteFile(path, []byte(strings.Repeat("k", n)), 0o644))
		_, err := vhdcrypt.ReadKeyFile(path)
		require.ErrorIs(t, err, vhdcrypt.ErrKeySize, "%d bytes", n)
		require.NotContains(t, err.Error(), "kkkk", "key material in the error")
		loose, err := vhdcrypt.LooseKeyFileMode(path)
		require.NoError(t, err)
		require.True(t, loose)
	}
	_, err := vhdcrypt.ReadKeyFile(filepath.Join(dir, "missing"))
	require.ErrorIs(t, err, os.ErrNotExist)
}

func TestKeyFromEnv(t *testing.T) {
	t.Parallel()
	raw := []byte(strings.Repeat("0123456789abcdef", 4))
	env := map[string]string{
		"STD":       base64.StdEncoding.EncodeToString(raw),
		"RAW":       base64.RawStdEncoding.EncodeToString(raw) + "\n",
		"SHORT":     base64.StdEncoding.EncodeToString(raw[:20]),
		"NOTB64":    "this is not base64 ###",
		"EMPTY":     "",
		"SECRETISH": base64.StdEncoding.EncodeToString(raw[:31]),
	}
	lookup := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	for _, name := range []string{"STD", "RAW"} {
		dek, err := vhdcrypt.KeyFromEnv(name, lookup)
		require.NoError(t, err, name)
		require.Equal(t, raw, dek.Bytes())
	}
	for name, want := range map[string]error{
		"SHORT": vhdcrypt.ErrKeySize, "NOTB64": vhdcrypt.ErrKeyEnv, "EMPTY": vhdcrypt.ErrKeyEnv, "UNSET": vhdcrypt.ErrKeyEnv, "SECRETISH": vhdcrypt.ErrKeySize,
	} {
		_, err := vhdcrypt.KeyFromEnv(name, lookup)
		require.ErrorIs(t, err, want, name)
		require.Contains(t, err.Error(), name, "the error names the variable")
		if v := env[name]; len(v) > 4 {
			require.NotContains(t, err.Error(), v[:5], "the error must not show the value")
		}
	}
}
