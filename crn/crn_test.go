package crn

import (
	"errors"
	"strings"
	"testing"
)

const (
	testAccount  = "0123456789abcdef0123456789abcdef"
	testInstance = "11111111-2222-3333-4444-555555555555"
	testKeyID    = "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee"
	testKPCRN    = "crn:v1:bluemix:public:kms:us-south:a/" + testAccount + ":" + testInstance + ":key:" + testKeyID
	testHPCSCRN  = "crn:v1:bluemix:public:hs-crypto:eu-de:a/" + testAccount + ":" + testInstance + ":key:" + testKeyID
)

func TestParseCRNValid(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in   string
		want Key
	}{
		{testKPCRN, Key{Service: KeyProtect, Region: "us-south", AccountID: testAccount, InstanceID: testInstance, KeyID: testKeyID}},
		{testHPCSCRN, Key{Service: HPCS, Region: "eu-de", AccountID: testAccount, InstanceID: testInstance, KeyID: testKeyID}},
		{strings.Replace(testKPCRN, "us-south", "in-che", 1), Key{Service: KeyProtect, Region: "in-che", AccountID: testAccount, InstanceID: testInstance, KeyID: testKeyID}},
	} {
		got, err := ParseKey(tc.in)
		if err != nil {
			t.Fatalf("ParseKey(%q): %v", tc.in, err)
		}
		if got != tc.want {
			t.Errorf("ParseKey(%q) = %+v, want %+v", tc.in, got, tc.want)
		}
		if got.String() != tc.in {
			t.Errorf("String() = %q, want the input back %q", got.String(), tc.in)
		}
	}
	c, _ := ParseKey(testKPCRN)
	if want := "crn:v1:bluemix:public:kms:us-south:a/" + testAccount + ":" + testInstance + "::"; c.InstanceCRN() != want {
		t.Errorf("InstanceCRN() = %q, want %q", c.InstanceCRN(), want)
	}
}

// TestParseCRNMalformed is the table of malformed inputs and the exact error
// each gives.
func TestParseCRNMalformed(t *testing.T) {
	t.Parallel()
	repl := func(old, new string) string { return strings.Replace(testKPCRN, old, new, 1) }
	for _, tc := range []struct {
		name, in, want string
	}{
		{"empty", "", `crn: invalid key CRN: crn: empty; want crn:v1:bluemix:public:kms:<region>:a/<account>:<instance>:key:<key-id>`},
		{"too long", testKPCRN + strings.Repeat("x", 600), `crn: invalid key CRN: crn: 747 bytes long, more than the 512 a key CRN can have`},
		{"too few segments", "crn:v1:bluemix:public:kms", `crn: invalid key CRN: crn "crn:v1:bluemix:public:kms": has 5 colon-separated segments, want 10 (crn:v1:bluemix:public:<service>:<region>:a/<account>:<instance>:key:<key-id>)`},
		{"instance CRN", "crn:v1:bluemix:public:kms:us-south:a/" + testAccount + ":" + testInstance + "::", `crn: invalid key CRN: resource-type: want "key": this is not a key CRN`},
		{"trailing colon", testKPCRN + ":", `crn: invalid key CRN: crn "` + testKPCRN[:80] + `...": has 11 colon-separated segments, want 10 (crn:v1:bluemix:public:<service>:<region>:a/<account>:<instance>:key:<key-id>)`},
		{"bad prefix", repl("crn:v1", "urn:v1"), `crn: invalid key CRN: prefix "urn": want "crn"`},
		{"bad version", repl(":v1:", ":v2:"), `crn: invalid key CRN: version "v2": want "v1"`},
		{"bad cname", repl("bluemix", "staging"), `crn: invalid key CRN: cname "staging": want "bluemix"`},
		{"bad ctype", repl("public", "dedicated"), `crn: invalid key CRN: ctype "dedicated": want "public"`},
		{"other service", repl(":kms:", ":cloud-object-storage:"), `crn: invalid key CRN: service-name "cloud-object-storage": want "kms" (Key Protect) or "hs-crypto" (Hyper Protect Crypto Services)`},
		{"upper-case service", repl(":kms:", ":KMS:"), `crn: invalid key CRN: service-name "KMS": want "kms" (Key Protect) or "hs-crypto" (Hyper Protect Crypto Services)`},
		{"empty region", repl("us-south", ""), `crn: invalid key CRN: location: empty; want the region, e.g. us-south`},
		{"multi-region", repl("us-south", "us"), `crn: invalid key CRN: location "us": want a region such as us-south or eu-de, not a multi-region or data-center location`},
		{"upper-case region", repl("us-south", "US-south"), `crn: invalid key CRN: location "US-south": only lowercase letters, digits and hyphens are allowed`},
		{"region double hyphen", repl("us-south", "us--south"), `crn: invalid key CRN: location "us--south": empty word between hyphens`},
		{"region digit first", repl("us-south", "1us-south"), `crn: invalid key CRN: location "1us-south": must start with a letter`},
		{"region too long", repl("us-south", "us-"+strings.Repeat("s", 40)), `crn: invalid key CRN: location "us-` + strings.Repeat("s", 40) + `": longer than 32 characters`},
		{"scope without a/", repl("a/"+testAccount, testAccount), `crn: invalid key CRN: scope "` + testAccount + `": want a/<account ID>`},
		{"scope o/", repl("a/", "o/"), `crn: invalid key CRN: scope "o/` + testAccount + `": want a/<account ID>`},
		{"short account", repl(testAccount, "0123"), `crn: invalid key CRN: scope "a/0123": the account ID must be 32 lowercase hexadecimal digits`},
		{"upper-case account", repl(testAccount, strings.ToUpper(testAccount)), `crn: invalid key CRN: scope "a/0123456789ABCDEF0123456789ABCDEF": the account ID must be 32 lowercase hexadecimal digits`},
		{"empty instance", repl(testInstance, ""), `crn: invalid key CRN: service-instance: want the instance GUID (8-4-4-4-12 lowercase hexadecimal digits)`},
		{"instance not a uuid", repl(testInstance, "my-instance"), `crn: invalid key CRN: service-instance "my-instance": want the instance GUID (8-4-4-4-12 lowercase hexadecimal digits)`},
		{"instance hyphen misplaced", repl(testInstance, "111111112-222-3333-4444-555555555555"), `crn: invalid key CRN: service-instance "111111112-222-3333-4444-555555555555": want the instance GUID (8-4-4-4-12 lowercase hexadecimal digits)`},
		{"resource type", repl(":key:", ":keyring:"), `crn: invalid key CRN: resource-type "keyring": want "key": this is not a key CRN`},
		{"key id alias", repl(testKeyID, "my-root-key"), `crn: invalid key CRN: resource "my-root-key": want the key ID (8-4-4-4-12 lowercase hexadecimal digits)`},
		{"key id upper-case", repl(testKeyID, strings.ToUpper(testKeyID)), `crn: invalid key CRN: resource "AAAAAAAA-BBBB-CCCC-DDDD-EEEEEEEEEEEE": want the key ID (8-4-4-4-12 lowercase hexadecimal digits)`},
		{"leading space", " " + testKPCRN, `crn: invalid key CRN: prefix " crn": want "crn"`},
		{"trailing newline", testKPCRN + "\n", `crn: invalid key CRN: resource "` + testKeyID + `\n": want the key ID (8-4-4-4-12 lowercase hexadecimal digits)`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseKey(tc.in)
			if err == nil {
				t.Fatalf("ParseKey(%q) succeeded", tc.in)
			}
			if err.Error() != tc.want {
				t.Errorf("error\n got %s\nwant %s", err, tc.want)
			}
			if !errors.Is(err, ErrInvalid) {
				t.Errorf("errors.Is(err, ErrInvalid) = false")
			}
			var ce *Error
			if !errors.As(err, &ce) || ce.Field == "" {
				t.Errorf("want a *Error naming the field, got %T", err)
			}
		})
	}
}

func FuzzParseKey(f *testing.F) {
	for _, s := range []string{
		testKPCRN, testHPCSCRN, "", ":::::::::", "crn:v1:bluemix:public:kms:us-south:a/:::",
		"crn:v1:bluemix:public:kms:us-south:a/" + testAccount + ":" + testInstance + "::",
		strings.Replace(testKPCRN, "us-south", "us", 1), "crn:v1:bluemix:public:hs-crypto:\x00:a/x:y:key:z",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		c, err := ParseKey(s)
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("error %v does not match ErrInvalid", err)
			}
			return
		}
		// A CRN that parses is canonical: it formats back to the input,
		// and the parts are what the format promises.
		if c.String() != s {
			t.Fatalf("ParseKey(%q).String() = %q", s, c.String())
		}
		if c.Service != KeyProtect && c.Service != HPCS {
			t.Fatalf("service %q", c.Service)
		}
		if !isUUID(c.InstanceID) || !isUUID(c.KeyID) || len(c.AccountID) != accountIDLen {
			t.Fatalf("parts not validated: %+v", c)
		}
	})
}

func TestParse(t *testing.T) {
	t.Parallel()
	c, err := Parse("crn:v1:bluemix:public:cloud-object-storage:global:a/0123:5ef6cebe::")
	if err != nil || c.ServiceName != "cloud-object-storage" || c.ServiceInstance != "5ef6cebe" || c.Resource != "" || c.Location != "global" {
		t.Fatalf("Parse = %+v, %v", c, err)
	}
	c, err = Parse("crn:v1:bluemix:public:is:us-south:a/1::image:4711")
	if err != nil || c.ResourceType != "image" || c.Resource != "4711" {
		t.Fatalf("Parse = %+v, %v", c, err)
	}
	if _, err := Parse("crn:v1:a"); err == nil || !strings.HasPrefix(err.Error(), "crn: invalid CRN: ") {
		t.Errorf("Parse's error %v does not say \"invalid CRN\"", err)
	}
	for _, bad := range []string{"", "crn:v1:a", "urn:v1:a:b:c:d:e:f:g:h", "crn:v2:a:b:c:d:e:f:g:h", "crn:v1:a:b:c:d:e:f:g:h:i", strings.Repeat("crn:v1:", 100)} {
		if _, err := Parse(bad); !errors.Is(err, ErrInvalid) {
			t.Errorf("Parse(%q): %v, want ErrInvalid", bad, err)
		}
	}
}
