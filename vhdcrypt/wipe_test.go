package vhdcrypt

import (
	"bytes"
	"context"
	"errors"
	"io"
	"reflect"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/e2eimage/e2eimage/xts"
)

// keyMemory returns the memory of c's expanded key schedules, which the
// amd64 assembly keeps in one buffer of xts's, read through reflection
// since xts does not export it; nil where there is no such buffer (the
// portable implementation keeps its keys in crypto/aes ciphers, which
// cannot be read or cleared).
func keyMemory(t *testing.T, c *xts.Cipher) []byte {
	t.Helper()
	sched := reflect.ValueOf(c).Elem().FieldByName("sched")
	if !sched.IsValid() || sched.Kind() != reflect.Pointer {
		t.Fatal("xts.Cipher has no sched pointer: keyMemory must follow xts's layout")
	}
	if sched.IsNil() {
		return nil
	}
	mem := sched.Elem().FieldByName("mem")
	if !mem.IsValid() {
		return nil // the portable build's schedule holds nothing
	}
	return mem.Bytes()
}

// TestCipherWipedAfterUse: the expanded keys an Encryptor or Decryptor
// holds are zeroed, in memory, as soon as its output is finished,
// whichever way it ends: written to the end, read to the end, closed
// early, or failed.
func TestCipherWipedAfterUse(t *testing.T) {
	t.Parallel()
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

	// mem is the key memory of the Cipher made last, checked by wiped.
	var mem []byte
	endings, checkedMemory := 0, 0
	hold := func(c *xts.Cipher) {
		mem = keyMemory(t, c)
		if mem != nil {
			require.False(t, bytes.Equal(mem, make([]byte, len(mem))), "the key memory is zero before use")
		}
	}
	wiped := func(t *testing.T, what string, c *xts.Cipher) {
		t.Helper()
		endings++
		require.Equal(t, "xts.Cipher(wiped)", c.String(), what)
		if mem != nil {
			require.Equal(t, make([]byte, len(mem)), mem, "%s: key bytes are left in the Cipher's memory", what)
			checkedMemory++
		}
	}
	newEnc := func() *Encryptor {
		e, err := NewEncryptor(ctx, bytes.NewReader(raw), dek, WithoutPartitionTable())
		require.NoError(t, err)
		require.Equal(t, "xts.Cipher(AES-256-XTS)", e.cipher.String())
		hold(e.cipher)
		return e
	}
	newDec := func() *Decryptor {
		d, err := NewDecryptor(ctx, bytes.NewReader(enc.Bytes()), dek)
		require.NoError(t, err)
		hold(d.cipher)
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
	if checkedMemory == 0 {
		t.Log("the portable implementation runs here: its keys sit in crypto/aes ciphers, whose memory cannot be read; only the wiped state was checked")
	} else {
		require.Equal(t, endings, checkedMemory, "endings whose key memory was checked")
	}
}

type failingWriter struct{}

func (failingWriter) Write([]byte) (int, error) { return 0, errors.New("disk full") }
