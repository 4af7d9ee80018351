package vhdcrypt

import (
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/e2eimage/e2eimage/internal/durable"
	"github.com/e2eimage/e2eimage/secret"
)

// DEK is a data encryption key: 32 or 64 raw bytes that never print
// themselves (every fmt verb, JSON and slog show a redaction marker). Call
// Zero when it is no longer needed.
type DEK = secret.DEK

// DEK sizes, in bytes. The encrypted VHD format uses AES-XTS, whose key is
// two AES keys (one for the data, one for the tweak), so IBM's documentation
// names each size after the total key length in bits:
const (
	// AES128XTS is a 32-byte DEK: AES-128-XTS, what IBM Cloud calls
	// "AES 256-bit" encryption.
	AES128XTS = secret.DEK256
	// AES256XTS is a 64-byte DEK: AES-256-XTS, what IBM Cloud calls
	// "AES 512-bit" encryption. It is the stronger choice and what NewDEK
	// callers should normally ask for.
	AES256XTS = secret.DEK512
)

// ErrKeySize is returned (wrapped) for a key that is neither 32 nor 64 bytes.
var ErrKeySize = secret.ErrDEKSize

// ErrKeyEnv is returned (wrapped) when a key cannot be taken from an
// environment variable: unset, empty or not base64.
var ErrKeyEnv = errors.New("vhdcrypt: no usable key in the environment variable")

// NewDEK returns a new random DEK of size bytes (AES128XTS or AES256XTS),
// read from crypto/rand.
func NewDEK(size int) (*DEK, error) {
	return secret.GenerateDEK(size)
}

// DEKFromBytes returns a DEK holding a copy of b, which must be 32 or 64
// bytes long. The caller should clear b afterwards.
func DEKFromBytes(b []byte) (*DEK, error) {
	return secret.NewDEK(b)
}

// maxKeyFile bounds what ReadKeyFile reads, so that pointing it at a large
// file by mistake fails fast instead of reading the file into memory.
const maxKeyFile = AES256XTS + 1

// ReadKeyFile reads a DEK stored as its raw 32 or 64 bytes (the format of
// vhd-util's -k key file and of WriteKeyFile). The error never contains key
// material. A file readable by group or others is accepted; callers that
// want to warn about it can check LooseKeyFileMode.
func ReadKeyFile(path string) (*DEK, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("vhdcrypt: opening key file: %w", err)
	}
	defer f.Close()
	buf := make([]byte, maxKeyFile)
	defer clear(buf)
	n, err := io.ReadFull(f, buf)
	if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("vhdcrypt: reading key file %s: %w", path, err)
	}
	if n != AES128XTS && n != AES256XTS {
		size := fmt.Sprintf("%d bytes", n)
		if n == maxKeyFile {
			size = "more than 64 bytes"
		}
		hint := ""
		if (n == AES128XTS+1 || n == AES256XTS+1) && (buf[n-1] == '\n' || buf[n-1] == '\r') {
			hint = " (a trailing newline? the file must hold the raw key bytes only)"
		}
		return nil, fmt.Errorf("vhdcrypt: key file %s holds %s%s: %w", path, size, hint, ErrKeySize)
	}
	return DEKFromBytes(buf[:n])
}

// LooseKeyFileMode reports whether a key file can be read by users other
// than its owner (any group or other permission bit set).
func LooseKeyFileMode(path string) (bool, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return false, fmt.Errorf("vhdcrypt: checking key file: %w", err)
	}
	return fi.Mode().Perm()&0o077 != 0, nil
}

// KeyFromEnv reads a DEK from the environment variable name, which holds
// the raw key bytes base64-encoded (standard alphabet, padding optional),
// for example `KEY=$(base64 -w0 key.bin)`. lookup is os.LookupEnv when nil.
// The error names the variable but never its value.
func KeyFromEnv(name string, lookup func(string) (string, bool)) (*DEK, error) {
	if lookup == nil {
		lookup = os.LookupEnv
	}
	v, ok := lookup(name)
	if !ok || strings.TrimSpace(v) == "" {
		return nil, fmt.Errorf("%w %s: it is unset or empty", ErrKeyEnv, name)
	}
	s := strings.TrimRight(strings.TrimSpace(v), "=")
	b, err := base64.RawStdEncoding.DecodeString(s)
	if err != nil {
		// Do not wrap err: base64 errors quote the offending byte offset
		// only, but keep even that out of the message.
		return nil, fmt.Errorf("%w %s: it is not valid base64", ErrKeyEnv, name)
	}
	defer clear(b)
	dek, err := DEKFromBytes(b)
	if err != nil {
		return nil, fmt.Errorf("vhdcrypt: key in environment variable %s: %w", name, err)
	}
	return dek, nil
}

// WriteKeyFile stores dek's raw bytes in a new file at path, mode 0600. It
// refuses to replace an existing file (the error wraps fs.ErrExist): losing a
// DEK loses every image encrypted with it. On any failure, and after a crash
// or power cut at any point, path holds either nothing or the whole key;
// once WriteKeyFile returns, the key survives a power cut.
func WriteKeyFile(path string, dek *DEK) error {
	if dek.Len() != AES128XTS && dek.Len() != AES256XTS {
		return fmt.Errorf("vhdcrypt: writing key file: %w (got %d bytes)", ErrKeySize, dek.Len())
	}
	// Never replaces an existing key, even one a concurrent writer made
	// meanwhile, and a crash or power cut leaves the whole key or no file.
	if err := durable.Create(path, dek.Bytes()); err != nil {
		return fmt.Errorf("vhdcrypt: writing key file: %w", err)
	}
	return nil
}
