package cli

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"io"
	"testing"
	"testing/iotest"

	"github.com/stretchr/testify/require"
)

func TestContextReaderPassesEveryByte(t *testing.T) {
	data := make([]byte, 3*ctxChunk+12345)
	_, _ = rand.Read(data)
	r := ContextReader(context.Background(), iotest.HalfReader(bytes.NewReader(data)))
	require.NoError(t, iotest.TestReader(r, data))
}

func TestContextReaderPassesTheError(t *testing.T) {
	boom := errors.New("boom")
	r := ContextReader(context.Background(), io.MultiReader(bytes.NewReader([]byte("abc")), iotest.ErrReader(boom)))
	b, err := io.ReadAll(r)
	require.Equal(t, "abc", string(b))
	require.ErrorIs(t, err, boom)
	_, err = r.Read(make([]byte, 1))
	require.ErrorIs(t, err, boom, "and again")
}

// A read blocked on input that never comes ends when the context does.
func TestContextReaderEndsABlockedReadOnCancel(t *testing.T) {
	pr, pw := io.Pipe()
	defer pw.Close() // ends the goroutine still blocked in pr.Read
	ctx, cancel := context.WithCancel(context.Background())
	r := ContextReader(ctx, pr)
	go func() { _, _ = pw.Write([]byte("head")) }()
	b := make([]byte, 4)
	_, err := io.ReadFull(r, b)
	require.NoError(t, err)
	require.Equal(t, "head", string(b))

	done := make(chan error, 1)
	go func() { _, err := r.Read(b); done <- err }()
	cancel()
	require.ErrorIs(t, <-done, context.Canceled)
	_, err = r.Read(b)
	require.ErrorIs(t, err, context.Canceled)
}
