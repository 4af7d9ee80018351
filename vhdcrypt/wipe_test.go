package vhdcrypt

import (
	"bytes"
	"context"
	"errors"
	"io"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestCipherWipedAfterUse: the expanded keys an Encryptor or Decryptor
// holds are zeroed as soon as its output is finished, whichever way it
// ends: written to the end, read to the end, closed early, or failed.
func TestCipherWipedAfterUse(t *testing.T) {
	ctx := context.Background()
	dek, err := NewDEK(AES256XTS)
	require.NoError(t, err)
	defer dek.Zero()
	raw := make([]byte, 3<<20)
	for i := range raw {
		raw[i] = byte(i * 7)
	}
	var enc bytes.Buffer
	require.NoError(t, EncryptImage(ctx, &enc, bytes.NewReader(raw), dek, WithoutPartitionTable()))

	wiped := func(t *testing.T, what string, s interface{ String() string }) {
		t.Helper()
		require.Equal(t, "xts.Cipher(wiped)", s.String(), what)
	}
	newEnc := func() *Encryptor {
		e, err := NewEncryptor(ctx, bytes.NewReader(raw), dek, WithoutPartitionTable())
		require.NoError(t, err)
		require.Equal(t, "xts.Cipher(AES-256-XTS)", e.cipher.String())
		return e
	}
	newDec := func() *Decryptor {
		d, err := NewDecryptor(ctx, bytes.NewReader(enc.Bytes()), dek)
		require.NoError(t, err)
		return d
	}

	e := newEnc()
	_, err = e.WriteTo(io.Discard)
	require.NoError(t, err)
	wiped(t, "encrypt WriteTo", e.cipher)

	e = newEnc()
	r := e.Reader()
	_, err = io.Copy(io.Discard, struct{ io.Reader }{r}) // Read, not WriteTo
	require.NoError(t, err)
	wiped(t, "encrypt read to EOF", e.cipher)
	require.NoError(t, r.Close())

	e = newEnc()
	r = e.Reader()
	_, err = r.Read(make([]byte, 4096))
	require.NoError(t, err)
	require.NoError(t, r.Close())
	wiped(t, "encrypt closed early", e.cipher)

	e = newEnc()
	require.NoError(t, e.Reader().Close())
	wiped(t, "encrypt closed unread", e.cipher)

	e = newEnc()
	_, err = e.WriteTo(failingWriter{})
	require.Error(t, err)
	wiped(t, "encrypt write error", e.cipher)

	d := newDec()
	_, err = d.WriteTo(io.Discard)
	require.NoError(t, err)
	wiped(t, "decrypt WriteTo", d.cipher)

	d = newDec()
	require.NoError(t, d.Reader().Close())
	wiped(t, "decrypt closed unread", d.cipher)
}

type failingWriter struct{}

func (failingWriter) Write([]byte) (int, error) { return 0, errors.New("disk full") }
