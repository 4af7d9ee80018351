package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime"
	"time"

	"github.com/e2eimage/e2eimage/disk"
	"github.com/e2eimage/e2eimage/doctor"
	"github.com/e2eimage/e2eimage/vhdcrypt"

	"golang.org/x/term"
)

// Exit codes (documented in the package comment).
const (
	exitOK            = 0
	exitFailure       = 1
	exitUsage         = 2
	exitWrongKey      = 3
	exitDamaged       = 4
	exitNotImportable = 5
	exitNotInspected  = 6
	exitInterrupted   = 130
)

// env is the process environment, injectable for tests.
type env struct {
	stdin  *os.File
	stdout *os.File
	stderr io.Writer
	lookup func(string) (string, bool)
}

// usageError is a command-line mistake: exit code 2.
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

// exitError carries a specific exit code for an error.
type exitError struct {
	code int
	err  error
}

func (e exitError) Error() string { return e.err.Error() }
func (e exitError) Unwrap() error { return e.err }

const usage = `usage:
  vhdcrypt encrypt -in SRC -out DST (-key-file KEY | -key-env NAME) [-workers N] [-size BYTES] [-no-partition-table] [-q]
  vhdcrypt decrypt -in ENC -out DST (-key-file KEY | -key-env NAME) [-format raw|vhd] [-workers N] [-q]
  vhdcrypt verify  -in ENC (-key-file KEY | -key-env NAME)
  vhdcrypt inspect -in FILE [-os-code CODE]
  vhdcrypt keygen  -out KEY [-bits 256|512]
"-" as -in or -out means standard input or output. Run "vhdcrypt CMD -h" for a command's flags.
`

// run executes one command and returns the exit code.
func run(ctx context.Context, args []string, e *env) int {
	if len(args) == 0 {
		fmt.Fprint(e.stderr, usage)
		return exitUsage
	}
	cmds := map[string]func(context.Context, []string, *env) error{
		"encrypt": cmdEncrypt,
		"decrypt": cmdDecrypt,
		"verify":  cmdVerify,
		"inspect": cmdInspect,
		"keygen":  cmdKeygen,
	}
	name := args[0]
	if name == "-h" || name == "-help" || name == "--help" || name == "help" {
		fmt.Fprint(e.stdout, usage)
		return exitOK
	}
	cmd, ok := cmds[name]
	if !ok {
		fmt.Fprintf(e.stderr, "vhdcrypt: unknown command %q\n%s", name, usage)
		return exitUsage
	}
	err := cmd(ctx, args[1:], e)
	if err == nil {
		return exitOK
	}
	if errors.Is(err, flag.ErrHelp) {
		return exitOK
	}
	fmt.Fprintf(e.stderr, "vhdcrypt %s: %v\n", name, err)
	var ue usageError
	var ee exitError
	switch {
	case errors.As(err, &ue):
		return exitUsage
	case ctx.Err() != nil && errors.Is(err, context.Canceled):
		return exitInterrupted
	case errors.As(err, &ee):
		return ee.code
	case errors.Is(err, vhdcrypt.ErrWrongKey):
		return exitWrongKey
	}
	return exitFailure
}

// newFlags returns a flag set that reports errors instead of exiting.
func newFlags(name string, e *env) *flag.FlagSet {
	fs := flag.NewFlagSet("vhdcrypt "+name, flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	return fs
}

// parse parses args and rejects positional arguments. -h prints the
// flags; a bad flag is one line with the way to them, so that the error
// does not scroll away behind the list.
func parse(fs *flag.FlagSet, args []string) error {
	out := fs.Output()
	fs.SetOutput(io.Discard)
	err := fs.Parse(args)
	fs.SetOutput(out)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprintf(out, "Usage of %s:\n", fs.Name())
			fs.PrintDefaults()
			return err
		}
		return usageError{fmt.Sprintf("%v (%s -h lists the flags)", err, fs.Name())}
	}
	if fs.NArg() > 0 {
		return usageError{fmt.Sprintf("unexpected argument %q (all inputs are flags)", fs.Arg(0))}
	}
	return nil
}

// keyFlags are the two ways to give a DEK.
type keyFlags struct{ file, env string }

func (k *keyFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&k.file, "key-file", "", "file holding the raw 32- or 64-byte key")
	fs.StringVar(&k.env, "key-env", "", "environment variable holding the key, base64-encoded")
}

func (k *keyFlags) load(e *env) (*vhdcrypt.DEK, error) {
	switch {
	case k.file != "" && k.env != "":
		return nil, usageError{"give the key with -key-file or -key-env, not both"}
	case k.file != "":
		if fi, err := os.Stat(k.file); err == nil && fi.IsDir() {
			return nil, usageError{fmt.Sprintf("-key-file %s is a directory: give the file that holds the raw key", k.file)}
		}
		if loose, err := vhdcrypt.LooseKeyFileMode(k.file); err == nil && loose {
			fmt.Fprintf(e.stderr, "vhdcrypt: warning: key file %s can be read by other users (chmod 600 it)\n", k.file)
		}
		dek, err := vhdcrypt.ReadKeyFile(k.file)
		if errors.Is(err, vhdcrypt.ErrKeySize) && base64KeyFile(k.file) {
			return nil, fmt.Errorf("key file %s holds base64 text, not the raw key bytes: give the text with -key-env NAME "+
				"(in the environment variable NAME), or decode it into a key file (base64 -d): %w", k.file, vhdcrypt.ErrKeySize)
		}
		return dek, err
	case k.env != "":
		return vhdcrypt.KeyFromEnv(k.env, e.lookup)
	}
	return nil, usageError{"a key is required: -key-file KEY or -key-env NAME"}
}

// cliError is an error told in the command's flags, wrapping the
// library's error (which names the library's options) for errors.Is.
type cliError struct {
	msg string
	err error
}

func (c cliError) Error() string { return c.msg }
func (c cliError) Unwrap() error { return c.err }

// noPartitionTable tells a disk without a partition table in the
// command's terms: one switch, -no-partition-table.
func noPartitionTable(in string, npt *disk.NoPartitionTableError) error {
	msg := fmt.Sprintf("%s: the %s image has no partition table (neither MBR nor GPT)", in, npt.Format)
	if npt.Found != "" {
		msg += "; it starts with " + npt.Found
		if npt.Found != "zeros" {
			msg += ", so it looks like a partition or volume image rather than a whole disk"
		}
	}
	msg += ": give the whole disk (with its partition table and boot loader), or add -no-partition-table to encrypt it as it is"
	return cliError{msg, npt}
}

// base64KeyFile reports whether the file at path holds the base64 text of
// a 32- or 64-byte key (the form -key-env takes) rather than the raw bytes.
func base64KeyFile(path string) bool {
	f, err := os.Open(path)
	if err != nil {
		return false
	}
	defer f.Close()
	buf := make([]byte, 256)
	defer clear(buf)
	n, _ := io.ReadFull(f, buf)
	text := bytes.TrimSpace(buf[:n])
	raw := make([]byte, base64.StdEncoding.DecodedLen(len(text)))
	defer clear(raw)
	m, err := base64.StdEncoding.Decode(raw, text)
	return err == nil && (m == vhdcrypt.AES128XTS || m == vhdcrypt.AES256XTS)
}

// dataFlags are shared by encrypt and decrypt.
type dataFlags struct {
	in, out string
	workers int
	quiet   bool
	key     keyFlags
}

func (d *dataFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&d.in, "in", "", "input image file, or - for standard input")
	fs.StringVar(&d.out, "out", "", "output file, or - for standard output")
	fs.IntVar(&d.workers, "workers", runtime.GOMAXPROCS(0), "parallel workers (0: one per CPU)")
	fs.BoolVar(&d.quiet, "q", false, "no progress or summary on standard error")
	d.key.register(fs)
}

func (d *dataFlags) check() error {
	if d.in == "" || d.out == "" {
		return usageError{"-in and -out are required"}
	}
	if d.workers < 0 {
		return usageError{"-workers cannot be negative (0 means one per CPU)"}
	}
	return nil
}

// open loads the key and opens the input of encrypt or decrypt, refusing
// an output file that is the input file. done closes the input and zeroes
// the key.
func (d *dataFlags) open(e *env) (dek *vhdcrypt.DEK, in *os.File, done func(), err error) {
	dek, err = d.key.load(e)
	if err != nil {
		return nil, nil, nil, err
	}
	in, closeIn, err := openIn(d.in, e)
	if err != nil {
		dek.Zero()
		return nil, nil, nil, err
	}
	done = func() {
		closeIn()
		dek.Zero()
	}
	if d.in != "-" && d.out != "-" && sameFile(d.in, d.out) {
		done()
		return nil, nil, nil, usageError{"-out is the input file"}
	}
	return dek, in, done, nil
}

// openIn opens the input: a file, or standard input for "-".
func openIn(path string, e *env) (*os.File, func(), error) {
	if path == "-" {
		growPipe(e.stdin)
		return e.stdin, func() {}, nil
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, err
	}
	return f, func() { f.Close() }, nil
}

// writeOut writes w's output to the -out destination.
func writeOut(out string, e *env, w io.WriterTo) error {
	if out == "-" {
		if term.IsTerminal(int(e.stdout.Fd())) {
			return usageError{"refusing to write a disk image to a terminal; redirect standard output or use -out FILE"}
		}
		growPipe(e.stdout)
		_, err := w.WriteTo(e.stdout)
		return err
	}
	return vhdcrypt.WriteFile(out, w)
}

func cmdEncrypt(ctx context.Context, args []string, e *env) error {
	fs := newFlags("encrypt", e)
	var d dataFlags
	d.register(fs)
	size := fs.Int64("size", -1, "size in bytes of a raw image read from standard input")
	randomNonce := fs.Bool("random-nonce", false, "write a random key-hash nonce instead of the zero nonce of IBM's documented procedure (hides that two images share a key; IBM documents only the zero nonce)")
	noTable := fs.Bool("no-partition-table", false, "accept a raw or qcow2 disk with neither an MBR nor a GPT (a deliberate file-system image; IBM Cloud boots the disk it imports)")
	if err := parse(fs, args); err != nil {
		return err
	}
	if err := d.check(); err != nil {
		return err
	}
	dek, in, done, err := d.open(e)
	if err != nil {
		return err
	}
	defer done()
	p := newProgress(e.stderr, d.quiet)
	opts := []vhdcrypt.Option{vhdcrypt.WithWorkers(d.workers), vhdcrypt.WithProgress(p.update)}
	if *randomNonce {
		opts = append(opts, vhdcrypt.WithRandomNonce())
	}
	if *size >= 0 {
		opts = append(opts, vhdcrypt.WithSize(*size))
	}
	if *noTable {
		opts = append(opts, vhdcrypt.WithoutPartitionTable())
	}
	start := time.Now()
	enc, err := vhdcrypt.NewEncryptor(ctx, in, dek, opts...)
	if err != nil {
		p.abort()
		var npt *disk.NoPartitionTableError
		switch {
		case errors.Is(err, vhdcrypt.ErrNeedSize):
			return usageError{"standard input is not a dynamic VHD: for a raw image give its size with -size BYTES (or give a file)"}
		case errors.As(err, &npt):
			return noPartitionTable(d.in, npt)
		}
		return err
	}
	if err := writeOut(d.out, e, enc); err != nil {
		p.abort()
		return err
	}
	alloc, total := enc.AllocatedBlocks()
	p.finish("encrypted", enc.Size(), time.Since(start), fmt.Sprintf("%d of %d blocks stored", alloc, total))
	return nil
}

func cmdDecrypt(ctx context.Context, args []string, e *env) error {
	fs := newFlags("decrypt", e)
	var d dataFlags
	d.register(fs)
	format := fs.String("format", "raw", "output format: raw (a disk image) or vhd (an unencrypted dynamic VHD)")
	if err := parse(fs, args); err != nil {
		return err
	}
	if err := d.check(); err != nil {
		return err
	}
	f, err := vhdcrypt.ParseFormat(*format)
	if err != nil {
		return usageError{err.Error()}
	}
	dek, in, done, err := d.open(e)
	if err != nil {
		return err
	}
	defer done()
	p := newProgress(e.stderr, d.quiet)
	start := time.Now()
	dec, err := vhdcrypt.NewDecryptor(ctx, in, dek, vhdcrypt.WithWorkers(d.workers), vhdcrypt.WithProgress(p.update), vhdcrypt.WithFormat(f))
	if err != nil {
		p.abort()
		return err
	}
	if err := writeOut(d.out, e, dec); err != nil {
		p.abort()
		return err
	}
	p.finish("decrypted", dec.Size(), time.Since(start), "")
	return nil
}

func cmdVerify(ctx context.Context, args []string, e *env) error {
	fs := newFlags("verify", e)
	var in string
	var key keyFlags
	fs.StringVar(&in, "in", "", "encrypted VHD file, or - for standard input")
	key.register(fs)
	if err := parse(fs, args); err != nil {
		return err
	}
	if in == "" {
		return usageError{"-in is required"}
	}
	dek, err := key.load(e)
	if err != nil {
		return err
	}
	defer dek.Zero()
	f, done, err := openIn(in, e)
	if err != nil {
		return err
	}
	defer done()
	rep, err := vhdcrypt.VerifyImage(ctx, f, dek)
	if err != nil {
		return err
	}
	fmt.Fprintln(e.stdout, "key: matches")
	if rep.ZeroPresentSectors > 0 {
		fmt.Fprintf(e.stdout, "damage: %d present sectors are stored as plaintext zeros (blocks %v) and decrypt to garbage\n",
			rep.ZeroPresentSectors, rep.ZeroPresentBlocks)
		fmt.Fprintln(e.stdout, "  (the defect of vhd-util copy with partially allocated source blocks; re-encrypt the source with vhdcrypt)")
		return exitError{exitDamaged, fmt.Errorf("the image is damaged: %d sectors affected", rep.ZeroPresentSectors)}
	}
	if len(rep.Problems) > 0 {
		for _, p := range rep.Problems {
			fmt.Fprintf(e.stdout, "problem: %v\n", &p)
		}
		return exitError{exitDamaged, fmt.Errorf("the image has %d structural problems", len(rep.Problems))}
	}
	fmt.Fprintln(e.stdout, "damage: none found")
	return nil
}

func cmdInspect(ctx context.Context, args []string, e *env) error {
	fs := newFlags("inspect", e)
	in := fs.String("in", "", "image file, or - for standard input (the doctor reads files only)")
	osCode := fs.String("os-code", "", "OS reference `code` the image will be imported with (e.g. UBUNTU_22_64): the doctor checks it names the image's system")
	if err := parse(fs, args); err != nil {
		return err
	}
	if *in == "" {
		return usageError{"-in is required"}
	}
	f, done, err := openIn(*in, e)
	if err != nil {
		return err
	}
	defer done()
	info, err := vhdcrypt.Inspect(ctx, f)
	if err != nil {
		return err
	}
	if _, err = io.WriteString(e.stdout, info.String()); err != nil {
		return err
	}
	return runDoctor(ctx, f, info, *osCode, e)
}

// runDoctor prints the image doctor's report on an unencrypted image file:
// IBM Cloud's requirements for an imported image, read inside it. A
// failing requirement is exit code 5; a requirement not inspected (and
// none failing) is exit code 6.
func runDoctor(ctx context.Context, f *os.File, info *vhdcrypt.ImageInfo, osCode string, e *env) error {
	fmt.Fprintln(e.stdout, "\nIBM Cloud import requirements (the image doctor):")
	ra, n, ok, err := vhdcrypt.RandomAccess(f)
	switch {
	case err != nil:
		return err
	case !ok:
		fmt.Fprintln(e.stdout, "not examined: the image comes from a stream; give the file")
		return nil
	case info.Encrypted:
		fmt.Fprintln(e.stdout, "not examined: the image is encrypted (its file systems are ciphertext); inspect its source")
		return nil
	}
	d, err := disk.Open(io.NewSectionReader(ra, 0, n), n, disk.AllowNoPartitionTable())
	if err != nil {
		return err
	}
	var opts []doctor.Option
	if osCode != "" {
		opts = append(opts, doctor.WithOSCode(osCode))
	}
	rep, err := doctor.Examine(ctx, d, opts...)
	if err != nil {
		return err
	}
	if _, err := io.WriteString(e.stdout, rep.String()); err != nil {
		return err
	}
	if osCode == "" && rep.OSCode() != "" {
		fmt.Fprintf(e.stdout, "suggested OS reference code: %s\n", rep.OSCode())
	}
	if !rep.OK() {
		return exitError{exitNotImportable, errors.New("the image does not meet IBM Cloud's import requirements (see the report above)")}
	}
	if !rep.Complete() {
		return exitError{exitNotInspected, errors.New("some of IBM Cloud's import requirements were not inspected (see the report above): check them by hand")}
	}
	return nil
}

func cmdKeygen(_ context.Context, args []string, e *env) error {
	fs := newFlags("keygen", e)
	out := fs.String("out", "", "key file to create (mode 0600; never overwritten)")
	bits := fs.Int("bits", 512, "key size as IBM Cloud names it: 512 (64 bytes, AES-256-XTS) or 256 (32 bytes, AES-128-XTS)")
	if err := parse(fs, args); err != nil {
		return err
	}
	if *out == "" || *out == "-" {
		return usageError{"-out KEYFILE is required (keys are never written to standard output)"}
	}
	var size int
	switch *bits {
	case 512:
		size = vhdcrypt.AES256XTS
	case 256:
		size = vhdcrypt.AES128XTS
	default:
		return usageError{fmt.Sprintf("-bits must be 256 or 512, not %d", *bits)}
	}
	dek, err := vhdcrypt.NewDEK(size)
	if err != nil {
		return err
	}
	defer dek.Zero()
	if err := vhdcrypt.WriteKeyFile(*out, dek); err != nil {
		if errors.Is(err, os.ErrExist) {
			return fmt.Errorf("%s exists; refusing to overwrite a key (delete it first if you really mean it)", *out)
		}
		return err
	}
	fmt.Fprintf(e.stderr, "wrote a %d-byte key (IBM \"AES %d-bit\") to %s\n", size, *bits, *out)
	return nil
}

// sameFile reports whether two paths name the same existing file.
func sameFile(a, b string) bool {
	fa, err := os.Stat(a)
	if err != nil {
		return false
	}
	fb, err := os.Stat(b)
	if err != nil {
		return false
	}
	return os.SameFile(fa, fb)
}
