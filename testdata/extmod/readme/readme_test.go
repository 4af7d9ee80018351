// Package readme_test runs the Go blocks of github.com/e2eimage/e2eimage's
// README.md, each the body of a function below between "README block"
// marker lines (the root module's internal/extcheck checks that they are
// the README's blocks verbatim), against the local cloud simulator started
// as a separate process.
package readme_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log"
	"os"
	"strings"
	"testing"

	"github.com/e2eimage/e2eimage/classic"
	"github.com/e2eimage/e2eimage/cos"
	"github.com/e2eimage/e2eimage/crn"
	"github.com/e2eimage/e2eimage/e2e"
	"github.com/e2eimage/e2eimage/e2e/ibmcloud"
	"github.com/e2eimage/e2eimage/iam"
	"github.com/e2eimage/e2eimage/secret"
	"github.com/e2eimage/e2eimage/vhdcrypt"

	"example.com/extmod/internal/exampletest"
)

// encryptFile is the block of "Encrypting an image (library)".
func encryptFile(ctx context.Context) error {
	// README block begin
	dek, err := vhdcrypt.NewDEK(vhdcrypt.AES256XTS) // 64 random bytes: AES-256-XTS ("AES 512-bit" in IBM's docs)
	if err != nil {
		return err
	}
	defer dek.Zero()
	// Raw, fixed VHD or dynamic VHD in; the encrypted tapdisk-style dynamic VHD out.
	if err := vhdcrypt.EncryptFile(ctx, "image.vhd-0.vhd", "image.raw", dek, vhdcrypt.WithWorkers(4)); err != nil {
		return err
	}
	out, err := os.Open("image.vhd-0.vhd")
	if err != nil {
		return err
	}
	defer out.Close()
	if err := vhdcrypt.VerifyKey(ctx, out, dek); err != nil {
		return err // matches vhdcrypt.ErrWrongKey when the image is another DEK's
	}
	// README block end
	return nil
}

// uploadStream is the streaming block of "Encrypting an image (library)".
func uploadStream(ctx context.Context, dek *vhdcrypt.DEK, store *cos.Client, bucket string) error {
	// README block begin
	src, err := os.Open("image.raw")
	if err != nil {
		return err
	}
	defer src.Close()
	enc, err := vhdcrypt.NewEncryptor(ctx, src, dek)
	if err != nil {
		return err
	}
	body := enc.Reader() // an io.ReadCloser; or enc.WriteTo(w)
	defer body.Close()
	res, err := store.Upload(ctx, bucket, "image.vhd-0.vhd", body, enc.Size())
	if err != nil {
		return err
	}
	fmt.Println(res.Size, "bytes uploaded, verified:", res.Verified)
	// README block end
	return nil
}

// runFlow is the block of "The whole flow".
func runFlow(ctx context.Context, endpoints ibmcloud.Endpoints) error {
	// README block begin
	clients, err := ibmcloud.Connect(ibmcloud.Config{
		APIKey:      secret.NewString(os.Getenv("IBMCLOUD_API_KEY")),
		RootKeyCRN:  os.Getenv("ROOT_KEY_CRN"), // crn:v1:bluemix:public:kms:us-south:a/...:key:...
		COSInstance: os.Getenv("COS_INSTANCE_CRN"),
		Endpoints:   endpoints,
	})
	if err != nil {
		return err
	}
	defer clients.Close()
	image, err := os.Open("disk.raw")
	if err != nil {
		return err
	}
	defer image.Close()
	importKey, err := ibmcloud.ReadSecretFile("import.key") // saved by an earlier run, if any
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	res, err := e2e.Run(ctx, e2e.Plan{
		Image: image, Name: "web", OSCode: "UBUNTU_22_64",
		KeyService: clients.Keys, IAM: clients.IAM, Prepare: true,
		ServiceID: iam.ServiceIDSpec{Name: "image-import"}, COSInstanceID: os.Getenv("COS_INSTANCE_ID"),
		ImportAPIKey: importKey, // checked, and used instead of making a new key
		SaveAPIKey: func(_ context.Context, _ iam.ServiceID, _ string, key *secret.String) error {
			return ibmcloud.WriteSecretFile("import.key", key) // mode 0600; read back above next time
		},
		COS: clients.COS, Bucket: os.Getenv("COS_BUCKET"), Classic: clients.Classic,
		Server: &classic.ServerSpec{Hostname: "web", Domain: "example.com", Datacenter: "dal13", CPUs: 2, MemoryMB: 4096},
		Audit:  clients.Audit, StatePath: "web.e2e-state.json", OnStep: func(s e2e.Step) { log.Println(s) },
	})
	if err != nil {
		return err
	}
	fmt.Println("server", res.Server.ID, "runs template", res.Template.ID)
	// README block end
	return nil
}

// serviceIDKeys counts the API keys of the README's import service ID with
// IAM's list API.
func serviceIDKeys(ctx context.Context, t *testing.T, endpoints ibmcloud.Endpoints) int {
	t.Helper()
	clients, err := ibmcloud.Connect(ibmcloud.Config{APIKey: secret.NewString(os.Getenv("IBMCLOUD_API_KEY")),
		RootKeyCRN: os.Getenv("ROOT_KEY_CRN"), Endpoints: endpoints})
	if err != nil {
		t.Fatal(err)
	}
	defer clients.Close()
	sid, err := clients.IAM.FindServiceID(ctx, "image-import")
	if err != nil || sid == nil {
		t.Fatalf("service ID image-import: %v %v", sid, err)
	}
	keys, err := clients.IAM.APIKeys(ctx, sid.IAMID)
	if err != nil {
		t.Fatal(err)
	}
	return len(keys)
}

// writeDisk writes the simulator's sample disk (examples/cloudsim
// -sample-image: an MBR and an ext4 root with cloud-init recorded), which
// the simulated import checks after decryption.
func writeDisk(t *testing.T, path string) {
	t.Helper()
	d, err := os.ReadFile(exampletest.SampleImage(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, d, 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestReadmeBlocks runs every block function against one fresh simulated
// account, in a temporary working directory, and checks what each left
// behind.
func TestReadmeBlocks(t *testing.T) {
	ctx := context.Background()
	src, err := os.ReadFile("readme_test.go")
	if err != nil {
		t.Fatal(err)
	}
	marked := strings.Count(string(src), "\t// README block begin\n")
	t.Chdir(t.TempDir())
	writeDisk(t, "image.raw")
	// disk.raw is imported by the flow, whose preflight runs the image
	// doctor: it must be a disk with an operating system on it.
	sample, err := os.ReadFile(exampletest.SampleImage(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile("disk.raw", sample, 0o600); err != nil {
		t.Fatal(err)
	}

	info := exampletest.StartSimulator(t, exampletest.Sim{Seed: 1, ClockSpeed: 2000})
	for k, field := range exampletest.Env {
		t.Setenv(k, info[field])
	}
	line, err := json.Marshal(info) // as examples/cloudsim printed it
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile("sim.json", line, 0o600); err != nil {
		t.Fatal(err)
	}
	endpoints, err := ibmcloud.LoadEndpoints("sim.json")
	if err != nil {
		t.Fatal(err)
	}

	ran := 0
	t.Run("encryptFile", func(t *testing.T) {
		if err := encryptFile(ctx); err != nil {
			t.Fatal(err)
		}
		f, err := os.Open("image.vhd-0.vhd")
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		img, err := vhdcrypt.Inspect(ctx, f)
		if err != nil {
			t.Fatal(err)
		}
		if !img.Encrypted {
			t.Fatalf("image.vhd-0.vhd is not an encrypted VHD: %+v", img)
		}
		ran++
	})

	t.Run("uploadStream", func(t *testing.T) {
		key, err := crn.ParseKey(os.Getenv("ROOT_KEY_CRN"))
		if err != nil {
			t.Fatal(err)
		}
		auth, err := iam.NewAuthenticator(secret.NewString(os.Getenv("IBMCLOUD_API_KEY")), iam.WithURL(endpoints.IAM))
		if err != nil {
			t.Fatal(err)
		}
		store, err := cos.New(cos.Config{Region: key.Region, Endpoint: endpoints.S3, Tokens: auth})
		if err != nil {
			t.Fatal(err)
		}
		defer store.CloseIdleConnections()
		dek, err := vhdcrypt.NewDEK(vhdcrypt.AES128XTS)
		if err != nil {
			t.Fatal(err)
		}
		defer dek.Zero()
		bucket := os.Getenv("COS_BUCKET")
		if err := uploadStream(ctx, dek, store, bucket); err != nil {
			t.Fatal(err)
		}
		var obj bytes.Buffer
		if _, err := store.DownloadStream(ctx, bucket, "image.vhd-0.vhd", &obj); err != nil {
			t.Fatal(err)
		}
		if err := vhdcrypt.VerifyKey(ctx, bytes.NewReader(obj.Bytes()), dek); err != nil {
			t.Fatalf("the uploaded object is not image.raw encrypted with the DEK: %v", err)
		}
		ran++
	})

	t.Run("runFlow", func(t *testing.T) {
		if err := runFlow(ctx, endpoints); err != nil {
			t.Fatal(err)
		}
		st, err := e2e.LoadState("web.e2e-state.json")
		if err != nil {
			t.Fatal(err)
		}
		if !st.TemplateActive || !st.Provisioned || st.GuestID == 0 {
			t.Fatalf("the state file records no active template and provisioned server: %+v", st)
		}
		fi, err := os.Stat("import.key")
		if err != nil {
			t.Fatalf("SaveAPIKey did not store the new API key: %v", err)
		}
		if fi.Mode().Perm() != 0o600 {
			t.Fatalf("import.key has mode %v", fi.Mode().Perm())
		}
		// Run again, as a user would for the next image (a new state
		// file): the saved key is used, none is made.
		first := serviceIDKeys(ctx, t, endpoints)
		if err := os.Rename("web.e2e-state.json", "web.first.e2e-state.json"); err != nil {
			t.Fatal(err)
		}
		if err := runFlow(ctx, endpoints); err != nil {
			t.Fatalf("the README's flow run a second time: %v", err)
		}
		second := serviceIDKeys(ctx, t, endpoints)
		t.Logf("API keys of service ID image-import: %d after the first run, %d after the second", first, second)
		if first != 1 || second != 1 {
			t.Fatalf("the service ID has %d API key(s) after the first run and %d after the second, want 1 and 1", first, second)
		}
		ran++
	})

	// Every marked block of this file ran and passed.
	if ran != marked {
		t.Fatalf("%d README blocks ran and passed, but %d are marked in readme_test.go", ran, marked)
	}
	t.Logf("%d README blocks ran against the simulator", ran)
}
