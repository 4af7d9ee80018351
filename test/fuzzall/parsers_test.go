package fuzzall

import (
	"bytes"
	"encoding/base64"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/e2eimage/e2eimage/vhdcrypt"

	"github.com/e2eimage/e2eimage/audit"
	"github.com/e2eimage/e2eimage/classic"
	"github.com/e2eimage/e2eimage/test/internal/leak"
)

// FuzzReadKeyFile: any file content gives a DEK equal to it (32 or 64
// bytes) or an error wrapping ErrKeySize that holds no part of the content;
// LooseKeyFileMode tells group or other permissions.
func FuzzReadKeyFile(f *testing.F) {
	for _, s := range [][]byte{
		nil, []byte("\n"), bytes.Repeat([]byte{0xA5}, 32), bytes.Repeat([]byte{1}, 33), bytes.Repeat([]byte{2}, 64),
		append(bytes.Repeat([]byte{3}, 64), '\n'), bytes.Repeat([]byte{4}, 65), bytes.Repeat([]byte("k"), 4096),
		[]byte(base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{5}, 32))),
	} {
		f.Add(s, uint16(0o600))
		f.Add(s, uint16(0o644))
	}
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, content []byte, mode uint16) {
		perm := os.FileMode(mode) & 0o777
		perm |= 0o400 // readable by the owner, or there is nothing to test
		path := filepath.Join(dir, "key")
		_ = os.Remove(path)
		if err := os.WriteFile(path, content, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(path, perm); err != nil {
			t.Fatal(err)
		}
		dek, err := vhdcrypt.ReadKeyFile(path)
		switch len(content) {
		case vhdcrypt.AES128XTS, vhdcrypt.AES256XTS:
			if err != nil {
				t.Fatalf("ReadKeyFile of a %d-byte file: %v", len(content), err)
			}
			if !bytes.Equal(dek.Bytes(), content) {
				t.Fatalf("the DEK is not the file's bytes")
			}
			dek.Zero()
			if dek.Len() != 0 {
				t.Fatalf("Len after Zero = %d", dek.Len())
			}
		default:
			if !errors.Is(err, vhdcrypt.ErrKeySize) {
				t.Fatalf("ReadKeyFile of a %d-byte file: %v, want ErrKeySize", len(content), err)
			}
			// The reader looks at 65 bytes at most; a leak would show
			// those.
			if head := content[:min(len(content), 80)]; len(head) >= leak.WindowBytes {
				if form := leak.Find(err.Error(), head); form != "" {
					t.Fatalf("the error shows the file's content (%s): %v", form, err)
				}
			}
		}
		loose, err := vhdcrypt.LooseKeyFileMode(path)
		if err != nil {
			t.Fatal(err)
		}
		if loose != (perm&0o077 != 0) {
			t.Fatalf("LooseKeyFileMode(%v) = %v", perm, loose)
		}
	})
}

// FuzzKeyFromEnv: any value gives the DEK it encodes (base64, padding
// optional, surrounding space ignored) or an error wrapping ErrKeyEnv or
// ErrKeySize, and no error quotes the value.
func FuzzKeyFromEnv(f *testing.F) {
	for _, s := range []string{
		"", " ", "====", base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{1}, 32)),
		base64.RawStdEncoding.EncodeToString(bytes.Repeat([]byte{2}, 64)) + "\n",
		base64.URLEncoding.EncodeToString(bytes.Repeat([]byte{0xFB}, 32)),
		base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{3}, 48)), "not base64 at all!",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		const name = "E2E_FUZZ_KEY"
		dek, err := vhdcrypt.KeyFromEnv(name, func(n string) (string, bool) { return v, n == name })
		if err != nil {
			if !errors.Is(err, vhdcrypt.ErrKeyEnv) && !errors.Is(err, vhdcrypt.ErrKeySize) {
				t.Fatalf("untyped error %v", err)
			}
			if !strings.Contains(err.Error(), name) {
				t.Fatalf("the error does not name the variable: %v", err)
			}
			if tv := strings.TrimSpace(v); len(tv) >= leak.WindowChars && strings.Contains(err.Error(), tv) {
				t.Fatalf("the error quotes the value: %v", err)
			}
			return
		}
		defer dek.Zero()
		want, derr := base64.RawStdEncoding.DecodeString(strings.TrimRight(strings.TrimSpace(v), "="))
		if derr != nil || !bytes.Equal(want, dek.Bytes()) {
			t.Fatalf("KeyFromEnv(%q) accepted a value that does not decode to the DEK (%v)", v, derr)
		}
		if dek.Len() != vhdcrypt.AES128XTS && dek.Len() != vhdcrypt.AES256XTS {
			t.Fatalf("DEK of %d bytes", dek.Len())
		}
	})
}

// FuzzCOSURI: what ParseCOSURI accepts has a non-empty region, bucket and
// object, region and bucket without '/', and prints back as itself; and a
// URI built from parts parses back to those parts when it parses.
func FuzzCOSURI(f *testing.F) {
	for _, s := range [][4]string{
		{"cos://us-south/bucket/obj.vhd-0.vhd", "us-south", "bucket", "obj.vhd"},
		{"cos://eu-de/b.b-b/a/b/c", "eu-de", "b.b-b", "a/b/c"},
		{"cos://", "", "", ""}, {"cos://x//", "x", "", "/"}, {"s3://a/b/c", "a", "b", "c"},
		{"cos://us-south/bkt/%2e%2e/etc", "us-south", "bkt", "../etc"},
		{"COS://us-south/bkt/o", "us-south", "b/kt", "o"},
		{"cos://us-south/bkt/o\x00.vhd", "us south", "BKT", "o\n"},
	} {
		f.Add(s[0], s[1], s[2], s[3])
	}
	f.Fuzz(func(t *testing.T, s, region, bucket, object string) {
		if u, err := classic.ParseCOSURI(s); err == nil {
			if u.Region == "" || u.Bucket == "" || u.Object == "" {
				t.Fatalf("ParseCOSURI(%q) = %+v: an empty part", s, u)
			}
			if strings.Contains(u.Region, "/") || strings.Contains(u.Bucket, "/") {
				t.Fatalf("ParseCOSURI(%q) = %+v: '/' in region or bucket", s, u)
			}
			if u.String() != s {
				t.Fatalf("ParseCOSURI(%q).String() = %q", s, u.String())
			}
			if strings.ContainsAny(u.Region+u.Bucket, " \t\n\x00?#%") {
				t.Fatalf("ParseCOSURI(%q) accepted a region or bucket with a space or URL syntax: %+v", s, u)
			}
		}
		// A URI built from valid parts (no '/' in region or bucket: they
		// are path segments) parses back to them when it parses.
		built := classic.COSURI{Region: region, Bucket: bucket, Object: object}
		if strings.Contains(region+bucket, "/") {
			return
		}
		if p, err := classic.ParseCOSURI(built.String()); err == nil && p != built {
			t.Fatalf("COSURI%+v prints as %q, which parses as %+v", built, built.String(), p)
		}
	})
}

// FuzzLuceneQuery: the Cloud Logs query built from any key CRNs and actions
// cannot be escaped: outside its quoted phrases it is exactly the expected
// structure, and each phrase unquotes to the value it was built from.
func FuzzLuceneQuery(f *testing.F) {
	f.Add("crn:v1:bluemix:public:kms:us-south:a/1:2:key:3", `kms.secrets.wrap`, true)
	f.Add(`a" OR target.id:*`, `x\`, false)
	f.Add(`\"`, `" AND NOT "`, true)
	f.Add("", "", false)
	f.Fuzz(func(t *testing.T, crn, action string, classicRes bool) {
		q := audit.Query{Start: time.Unix(0, 0), End: time.Unix(1, 0), KeyCRNs: []string{crn}, Actions: []string{action}}
		if classicRes {
			q.TemplateIDs = []int{1}
		}
		got := audit.LuceneQuery(q)
		skeleton, phrases, ok := splitPhrases(got)
		if !ok {
			t.Fatalf("unbalanced quotes in %q", got)
		}
		want := `(target.id:"" OR action:audit-log.*) AND (action:"")`
		if !classicRes {
			want = `(target.id:"") AND (action:"")`
		}
		if skeleton != want {
			t.Fatalf("query %q has structure %q, want %q", got, skeleton, want)
		}
		if len(phrases) != 2 || phrases[0] != crn || phrases[1] != action {
			t.Fatalf("phrases %q, want %q and %q", phrases, crn, action)
		}
	})
}

// splitPhrases separates a Lucene query into its structure (phrases
// emptied to "") and the unescaped phrases.
func splitPhrases(q string) (skeleton string, phrases []string, ok bool) {
	var sk, ph strings.Builder
	in := false
	for i := 0; i < len(q); i++ {
		c := q[i]
		switch {
		case !in && c == '"':
			in = true
			sk.WriteString(`""`)
			ph.Reset()
		case in && c == '\\':
			if i+1 >= len(q) {
				return "", nil, false
			}
			i++
			ph.WriteByte(q[i])
		case in && c == '"':
			in = false
			phrases = append(phrases, ph.String())
		case in:
			ph.WriteByte(c)
		default:
			sk.WriteByte(c)
		}
	}
	return sk.String(), phrases, !in
}
