package secrets

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/e2eimage/e2eimage/vhdcrypt"

	"go.uber.org/goleak"

	"github.com/e2eimage/e2eimage/e2e"
	"github.com/e2eimage/e2eimage/internal/sampleimage"
	"github.com/e2eimage/e2eimage/secret"
	"github.com/e2eimage/e2eimage/test/internal/hvhd"
	"github.com/e2eimage/e2eimage/test/internal/leak"
	"github.com/e2eimage/e2eimage/vhd"
	"github.com/e2eimage/e2eimage/xts"
)

// panicHelperEnv makes the test binary act as a program that panics while
// it encrypts (TestPanicTraceHoldsNoKey runs it).
const panicHelperEnv = "HARDEN_PANIC_HELPER"

func TestMain(m *testing.M) {
	if os.Getenv(panicHelperEnv) != "" {
		panicHelper(os.Getenv(panicHelperEnv))
		return
	}
	// Keep-alive connections are checked by
	// TestClientsCloseReleasesConnections; here they would hide every
	// other leak behind that one.
	goleak.VerifyTestMain(m, goleak.IgnoreAnyFunction("net/http.(*persistConn).readLoop"),
		goleak.IgnoreAnyFunction("net/http.(*persistConn).writeLoop"), goleak.Cleanup(func(code int) {
			if binsDir != "" {
				_ = os.RemoveAll(binsDir)
			}
			os.Exit(code)
		}))
}

// leakDEK returns a DEK with distinctive bytes.
func leakDEK(t *testing.T, size int) (*vhdcrypt.DEK, []byte) {
	t.Helper()
	raw := hvhd.DEKBytes()[:size]
	dek, err := vhdcrypt.DEKFromBytes(raw)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(dek.Zero)
	return dek, raw
}

// TestOfflineVerbsLeakNothing runs every offline verb, on success and on
// failure, with a logger at the lowest level, and looks for the DEK in the
// logs, the errors (%v and %+v), the printed results and the output image.
func TestOfflineVerbsLeakNothing(t *testing.T) {
	ctx := context.Background()
	var logs bytes.Buffer
	lvl := slog.Level(-8)
	logger := slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: lvl}))
	textLogger := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: lvl}))
	sc := leak.NewScanner()
	var texts []string
	note := func(what string, v any) {
		switch x := v.(type) {
		case nil:
		case error:
			texts = append(texts, what+": "+x.Error(), fmt.Sprintf("%s: %+v %#v", what, x, x))
		case fmt.Stringer:
			texts = append(texts, what+": "+x.String())
		default:
			texts = append(texts, fmt.Sprintf("%s: %+v", what, x))
		}
	}
	img, err := sampleimage.Build(sampleimage.Options{Size: sampleimage.MinSize, Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	for _, size := range []int{vhdcrypt.AES128XTS, vhdcrypt.AES256XTS} {
		dek, raw := leakDEK(t, size)
		sc.AddKey(fmt.Sprintf("%d-byte DEK", size), raw)
		wrongRaw := bytes.Clone(raw)
		wrongRaw[0] ^= 1
		wrong, _ := vhdcrypt.DEKFromBytes(wrongRaw)
		defer wrong.Zero()
		sc.AddKey("wrong DEK", wrongRaw)
		opts := []vhdcrypt.Option{vhdcrypt.WithLogger(logger), vhdcrypt.WithProgress(func(p vhdcrypt.Progress) { note("progress", p) })}

		var enc bytes.Buffer
		note("encrypt stream", vhdcrypt.EncryptImage(ctx, &enc, struct{ io.Reader }{bytes.NewReader(img)}, dek, append(opts, vhdcrypt.WithSize(int64(len(img))))...))
		note("encrypt file", vhdcrypt.EncryptImage(ctx, io.Discard, bytes.NewReader(img), dek, vhdcrypt.WithLogger(textLogger)))
		note("encrypt twice", vhdcrypt.EncryptImage(ctx, io.Discard, bytes.NewReader(enc.Bytes()), dek, opts...))
		note("decrypt", vhdcrypt.DecryptImage(ctx, io.Discard, bytes.NewReader(enc.Bytes()), dek, opts...))
		note("decrypt wrong key", vhdcrypt.DecryptImage(ctx, io.Discard, bytes.NewReader(enc.Bytes()), wrong, opts...))
		note("verify wrong key", vhdcrypt.VerifyKey(ctx, bytes.NewReader(enc.Bytes()), wrong))
		rep, err := vhdcrypt.VerifyImage(ctx, bytes.NewReader(enc.Bytes()), dek)
		note("verify image", err)
		note("verify report", rep)
		info, err := vhdcrypt.Inspect(ctx, bytes.NewReader(enc.Bytes()))
		note("inspect", err)
		note("inspect info", info)
		truncated := enc.Bytes()[:enc.Len()/2]
		note("decrypt truncated", vhdcrypt.DecryptImage(ctx, io.Discard, bytes.NewReader(truncated), dek, opts...))
		note("decrypt stream truncated", vhdcrypt.DecryptImage(ctx, io.Discard, struct{ io.Reader }{bytes.NewReader(truncated)}, dek, opts...))
		out := filepath.Join(dir, fmt.Sprintf("out-%d.vhd", size))
		note("encrypt file", vhdcrypt.EncryptFile(ctx, out, writeTemp(t, dir, img), dek, opts...))
		note("encrypt into a directory", vhdcrypt.EncryptFile(ctx, dir, writeTemp(t, dir, img), dek, opts...))
		if b, err := os.ReadFile(out); err == nil && bytes.Contains(b, raw[:16]) {
			t.Errorf("the encrypted file contains the DEK")
		}
		if bytes.Contains(enc.Bytes(), raw[:16]) {
			t.Errorf("the encrypted image contains the DEK")
		}

		// Keys from files and the environment, right and wrong.
		kf := filepath.Join(dir, fmt.Sprintf("key-%d", size))
		note("write key file", vhdcrypt.WriteKeyFile(kf, dek))
		note("write key file again", vhdcrypt.WriteKeyFile(kf, dek))
		bad := filepath.Join(dir, fmt.Sprintf("bad-key-%d", size))
		if err := os.WriteFile(bad, append(bytes.Clone(raw), '\n'), 0o600); err != nil {
			t.Fatal(err)
		}
		_, err = vhdcrypt.ReadKeyFile(bad)
		note("read key file with newline", err)
		env := map[string]string{
			"GOOD": base64.StdEncoding.EncodeToString(raw), "LONG": base64.StdEncoding.EncodeToString(append(bytes.Clone(raw), 1)),
			"BAD": base64.StdEncoding.EncodeToString(raw)[:20] + "!!" + base64.StdEncoding.EncodeToString(raw)[22:],
		}
		for name := range env {
			k, err := vhdcrypt.KeyFromEnv(name, func(n string) (string, bool) { v, ok := env[n]; return v, ok })
			note("key from env "+name, err)
			if k != nil {
				note("key from env value", k)
				k.Zero()
			}
		}
	}
	// The DEK types themselves, every way a careless program prints them.
	dek, _ := leakDEK(t, vhdcrypt.AES256XTS)
	holder := struct {
		Name string
		Key  *secret.DEK
		API  *secret.String
	}{"x", dek, secret.NewString("api-key-that-must-not-print-0123456789")}
	sc.AddString("API key", holder.API.Reveal())
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%X", "%d", "%T"} {
		texts = append(texts, fmt.Sprintf(verb, dek), fmt.Sprintf(verb, holder), fmt.Sprintf(verb, &holder), fmt.Sprintf(verb, holder.API))
	}
	js, _ := json.Marshal(holder)
	texts = append(texts, string(js))
	logger.Debug("holder", "h", holder, "dek", dek, "api", holder.API)
	textLogger.Debug("holder", "h", holder, "dek", dek, "api", holder.API)
	c, err := xts.NewCipher(hvhd.DEKBytes())
	if err != nil {
		t.Fatal(err)
	}
	for _, verb := range []string{"%v", "%+v", "%#v", "%x", "%s"} {
		texts = append(texts, fmt.Sprintf(verb, c), fmt.Sprintf(verb, *c))
	}

	var found []string
	found = append(found, sc.Scan("logs", logs.String())...)
	for i, s := range texts {
		found = append(found, sc.Scan(fmt.Sprintf("output %d", i), s)...)
	}
	for _, f := range found {
		t.Errorf("secret leaked: %s", f)
	}
	t.Logf("HARDEN secrets scope=offline texts=%d log_bytes=%d found=%d", len(texts)+1, logs.Len(), len(found))
}

func writeTemp(t *testing.T, dir string, b []byte) string {
	t.Helper()
	f, err := os.CreateTemp(dir, "src-*.raw")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.Write(b); err != nil {
		t.Fatal(err)
	}
	return f.Name()
}

// panicHelper encrypts with the distinctive DEK and panics in the middle:
// mode "progress" from the progress callback (a pipeline goroutine holds
// the key schedule), "value" with the DEK as the panic value, "error" with
// an error that formats the DEK.
func panicHelper(mode string) {
	dek, _ := vhdcrypt.DEKFromBytes(hvhd.DEKBytes())
	switch mode {
	case "value":
		panic(dek)
	case "error":
		panic(fmt.Errorf("failed with key %v (%x)", dek, dek))
	case "cipher":
		c, _ := xts.NewCipher(hvhd.DEKBytes())
		panic(c)
	}
	img, _ := sampleimage.Build(sampleimage.Options{Size: sampleimage.MinSize, Seed: 2})
	n := 0
	_ = vhdcrypt.EncryptImage(context.Background(), io.Discard, bytes.NewReader(img), dek, vhdcrypt.WithWorkers(2),
		vhdcrypt.WithProgress(func(vhdcrypt.Progress) {
			if n++; n == 2 {
				panic("injected panic in the middle of an encryption")
			}
		}))
	os.Exit(0)
}

// TestPanicTraceHoldsNoKey makes a program panic while it holds the DEK
// and its key schedules, with the most verbose traceback Go prints without
// dumping core, and looks for the key in its standard error.
func TestPanicTraceHoldsNoKey(t *testing.T) {
	modes := []string{"progress", "value", "error", "cipher"}
	traces, found := 0, 0
	for _, mode := range modes {
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), panicHelperEnv+"="+mode, "GOTRACEBACK=system")
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		err := cmd.Run()
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != 2 {
			t.Errorf("%s: the helper did not panic (%v); stderr:\n%s", mode, err, stderr.String())
			continue
		}
		if !strings.Contains(stderr.String(), "panic") || !strings.Contains(stderr.String(), "goroutine") {
			t.Errorf("%s: no panic trace in:\n%s", mode, stderr.String())
			continue
		}
		traces++
		if form := leak.Find(stderr.String(), hvhd.DEKBytes()); form != "" {
			found++
			t.Errorf("%s: the panic trace holds the DEK (%s):\n%s", mode, form, stderr.String())
		}
	}
	if traces != len(modes) {
		t.Errorf("%d panic traces scanned of %d programs", traces, len(modes))
	}
	t.Logf("HARDEN secrets scope=panic traces=%d found=%d", traces, found)
}

// TestKeyMaterialIsZeroed checks what can be checked from outside: a DEK's
// bytes are overwritten in place by Zero, secret strings are emptied, and
// the verbs leave the caller's DEK alone (the caller owns and zeroes it),
// and a wiped xts.Cipher is unusable. Each check that holds is counted;
// the counts must equal the number of objects checked.
func TestKeyMaterialIsZeroed(t *testing.T) {
	img, _ := sampleimage.Build(sampleimage.Options{Size: sampleimage.MinSize, Seed: 3})
	sizes := []int{vhdcrypt.AES128XTS, vhdcrypt.AES256XTS}
	deksZeroed, stringsZeroed, ciphersWiped := 0, 0, 0
	for _, size := range sizes {
		dek, err := vhdcrypt.DEKFromBytes(hvhd.DEKBytes()[:size])
		if err != nil {
			t.Fatal(err)
		}
		if err := vhdcrypt.EncryptImage(context.Background(), io.Discard, bytes.NewReader(img), dek); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(dek.Bytes(), hvhd.DEKBytes()[:size]) {
			t.Errorf("%d-byte DEK: EncryptImage changed the caller's DEK", size)
		}
		b := dek.Bytes() // the DEK's own memory, not a copy
		dek.Zero()
		ok := true
		if !bytes.Equal(b, make([]byte, len(b))) {
			ok = false
			t.Errorf("%d-byte DEK: Zero left key bytes in the DEK's memory", size)
		}
		if dek.Len() != 0 || len(dek.Bytes()) != 0 {
			ok = false
			t.Errorf("%d-byte DEK: a zeroed DEK still has %d bytes", size, dek.Len())
		}
		dek.Zero() // twice is fine
		if ok {
			deksZeroed++
		}
	}

	apiKeys := []string{"an-api-key-0123456789", strings.Repeat("k", 200)}
	for _, k := range apiKeys {
		s := secret.NewString(k)
		s.Zero()
		if s.Reveal() != "" || !s.Empty() {
			t.Errorf("a zeroed secret.String still reveals %d bytes", len(s.Reveal()))
			continue
		}
		stringsZeroed++
	}

	// xts.Cipher.Wipe: the Cipher refuses to run afterwards (that its
	// memory is zeroed is checked inside xts, and that e2e wipes every
	// Cipher it made once its output ends, inside e2e).
	for _, size := range sizes {
		c, err := xts.NewCipher(hvhd.DEKBytes()[:size])
		if err != nil {
			t.Fatal(err)
		}
		sector := make([]byte, xts.SectorSize)
		if err := c.EncryptSectors(sector, sector, 0); err != nil {
			t.Fatal(err)
		}
		c.Wipe()
		if err := c.EncryptSectors(sector, sector, 0); err == nil {
			t.Errorf("a wiped %d-byte xts.Cipher still encrypts", size)
			continue
		}
		ciphersWiped++
	}
	if deksZeroed != len(sizes) || stringsZeroed != len(apiKeys) || ciphersWiped != len(sizes) {
		t.Errorf("zeroed %d of %d DEKs, %d of %d secret strings, wiped %d of %d ciphers",
			deksZeroed, len(sizes), stringsZeroed, len(apiKeys), ciphersWiped, len(sizes))
	}
	t.Logf("HARDEN secrets scope=zeroing deks=%d dek_zeroed=%d strings=%d string_zeroed=%d ciphers=%d xts_wiped=%d",
		len(sizes), deksZeroed, len(apiKeys), stringsZeroed, len(sizes), ciphersWiped)
}

// TestFilesArePrivate writes every kind of file the packages write with a
// umask of 0 and checks that none is readable by group or others.
func TestFilesArePrivate(t *testing.T) {
	old := syscall.Umask(0)
	defer syscall.Umask(old)
	dir := t.TempDir()
	ctx := context.Background()
	dek, _ := leakDEK(t, vhdcrypt.AES256XTS)
	img, _ := sampleimage.Build(sampleimage.Options{Size: sampleimage.MinSize, Seed: 4})
	src := writeTemp(t, dir, img)
	files := map[string]string{
		"key file":       filepath.Join(dir, "key"),
		"encrypted file": filepath.Join(dir, "enc.vhd"),
		"decrypted file": filepath.Join(dir, "dec.raw"),
		"WriteFile":      filepath.Join(dir, "writefile.vhd"),
		"state file":     filepath.Join(dir, "state.json"),
	}
	if err := vhdcrypt.WriteKeyFile(files["key file"], dek); err != nil {
		t.Fatal(err)
	}
	if err := vhdcrypt.EncryptFile(ctx, files["encrypted file"], src, dek); err != nil {
		t.Fatal(err)
	}
	if err := vhdcrypt.DecryptFile(ctx, files["decrypted file"], files["encrypted file"], dek); err != nil {
		t.Fatal(err)
	}
	enc, err := vhdcrypt.NewEncryptor(ctx, bytes.NewReader(img), dek)
	if err != nil {
		t.Fatal(err)
	}
	if err := vhdcrypt.WriteFile(files["WriteFile"], enc); err != nil {
		t.Fatal(err)
	}
	st := &e2e.State{Version: e2e.StateVersion, Name: "x", Started: time.Now()}
	if err := st.Save(files["state file"]); err != nil {
		t.Fatal(err)
	}
	checked, loose := 0, 0
	for what, path := range files {
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		checked++
		if fi.Mode().Perm()&0o077 != 0 {
			loose++
			t.Errorf("%s written with mode %v under umask 0", what, fi.Mode().Perm())
		}
	}
	if l, err := vhdcrypt.LooseKeyFileMode(files["key file"]); err != nil || l {
		t.Errorf("LooseKeyFileMode of a 0600 key file: %v, %v", l, err)
	}
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), ".") {
			t.Errorf("temporary file left behind: %s", e.Name())
		}
	}
	if _, err := vhd.Open(mustOpen(t, files["encrypted file"])); err != nil {
		t.Errorf("the encrypted file does not open: %v", err)
	}
	if checked != len(files) {
		t.Errorf("%d of %d files checked", checked, len(files))
	}
	t.Logf("HARDEN secrets scope=files files=%d loose=%d", checked, loose)
}

func mustOpen(t *testing.T, path string) (io.ReaderAt, int64) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = f.Close() })
	fi, err := f.Stat()
	if err != nil {
		t.Fatal(err)
	}
	return f, fi.Size()
}
