package cos_test

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"log"
	"net/http/httptest"
	"os"
	"strings"

	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"

	"github.com/e2eimage/e2eimage/cos"
	"github.com/e2eimage/e2eimage/secret"
)

// localClient returns a client of an in-memory S3 server, standing in for
// COS in the examples.
func localClient() (*cos.Client, func()) {
	srv := httptest.NewServer(gofakes3.New(s3mem.New()).Server())
	c, err := cos.New(cos.Config{
		Region:   "us-south",
		Endpoint: srv.URL, // plain http is accepted for loopback hosts only
		HMAC:     &cos.HMAC{AccessKeyID: "example", SecretAccessKey: secret.NewString("example-secret")},
	})
	if err != nil {
		log.Fatal(err)
	}
	if err := c.CreateBucket(context.Background(), "images", cos.BucketSpec{}); err != nil {
		log.Fatal(err)
	}
	return c, srv.Close
}

// A client of IBM Cloud Object Storage in us-south, over the private
// endpoint, authenticated with an API key from the environment.
func ExampleNew() {
	c, err := cos.New(cos.Config{
		Region:            "us-south",
		EndpointType:      cos.Private,
		APIKey:            secret.NewString(os.Getenv("IBMCLOUD_API_KEY")),
		ServiceInstanceID: os.Getenv("COS_INSTANCE_CRN"),
	})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(c.Endpoint())
}

func ExampleEndpointURL() {
	for _, t := range []cos.EndpointType{cos.Public, cos.Private, cos.Direct} {
		u, err := cos.EndpointURL("eu-de", t)
		if err != nil {
			log.Fatal(err)
		}
		fmt.Println(u)
	}
	// Output:
	// https://s3.eu-de.cloud-object-storage.appdomain.cloud
	// https://s3.private.eu-de.cloud-object-storage.appdomain.cloud
	// https://s3.direct.eu-de.cloud-object-storage.appdomain.cloud
}

func ExampleClient_Upload() {
	c, done := localClient()
	defer done()
	ctx := context.Background()

	// A strings.Reader is an io.ReaderAt of known size: its parts are sent
	// as sections of it, without copies. A stream of unknown length would be
	// passed with cos.SizeUnknown.
	image := strings.NewReader(strings.Repeat("encrypted image bytes ", 1<<20))
	res, err := c.Upload(ctx, "images", "image.vhd", image, image.Size(),
		cos.WithPartSize(cos.MinPartSize),
		cos.WithProgress(func(done, total int64) { /* report done of total */ }))
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(res.Size, "bytes in", res.Parts, "parts; verified:", res.Verified)
	// Output: 23068672 bytes in 5 parts; verified: true
}

// failingReader stands for an input that breaks part-way (a disk error, a
// dropped connection to the image's source).
type failingReader struct {
	r io.Reader
	n int
}

func (f *failingReader) Read(p []byte) (int, error) {
	if f.n <= 0 {
		return 0, errors.New("read error")
	}
	p = p[:min(len(p), f.n)]
	n, err := f.r.Read(p)
	f.n -= n
	return n, err
}

func ExampleClient_Resume() {
	c, done := localClient()
	defer done()
	ctx := context.Background()
	data := strings.Repeat("x", 3*cos.MinPartSize)

	// The first attempt fails after two parts; WithResumable keeps the
	// multipart upload and the error says how to continue.
	broken := &failingReader{r: strings.NewReader(data), n: 2*cos.MinPartSize + 10}
	_, err := c.Upload(ctx, "images", "image.vhd", broken, int64(len(data)),
		cos.WithPartSize(cos.MinPartSize), cos.WithResumable())
	var ue *cos.UploadError
	if !errors.As(err, &ue) || !ue.Resumable {
		log.Fatal(err)
	}
	fmt.Println("kept for resume with", len(ue.Completed), "parts done")

	// ue.UploadState marshals to JSON, for a state file. Resume reads the
	// input again from the start and sends only what the server lacks.
	res, err := c.Resume(ctx, ue.UploadState, strings.NewReader(data), int64(len(data)))
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("resumed: sent", res.PartsSent, "skipped", res.PartsSkipped, "verified:", res.Verified)
	// Output:
	// kept for resume with 2 parts done
	// resumed: sent 1 skipped 2 verified: true
}

func ExampleClient_DownloadStream() {
	c, done := localClient()
	defer done()
	ctx := context.Background()
	if _, err := c.Upload(ctx, "images", "small.vhd", strings.NewReader("hello"), 5); err != nil {
		log.Fatal(err)
	}

	// DownloadStream checks what it writes against the stored SHA-256 and
	// the ETag; Download (parallel ranges into an io.WriterAt) checks the size.
	h := sha256.New()
	n, err := c.DownloadStream(ctx, "images", "small.vhd", h)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%d bytes, sha256 %x\n", n, h.Sum(nil))
	// Output: 5 bytes, sha256 2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824
}

// The preflight check of the bucket an E2E image goes to: it must exist,
// be Regional and be in the key service's region.
func ExampleClient_CheckBucket() {
	c, err := cos.New(cos.Config{Region: "us-south", APIKey: secret.NewString(os.Getenv("IBMCLOUD_API_KEY"))})
	if err != nil {
		log.Fatal(err)
	}
	info, err := c.CheckBucket(context.Background(), "my-images", "us-south")
	switch {
	case errors.Is(err, cos.ErrNotRegional):
		log.Fatalf("bucket is %s; E2E import needs a Regional bucket", info.Location.Resiliency)
	case err != nil:
		log.Fatal(err)
	}
	fmt.Println("bucket is in", info.Location.Location)
}

func ExampleParseLocationConstraint() {
	for _, lc := range []string{"us-south-smart", "eu-standard", "ams03-vault", "jp-tok-onerate_active"} {
		loc, err := cos.ParseLocationConstraint(lc)
		if err != nil {
			log.Fatal(err)
		}
		fmt.Printf("%-22s %-8s %-15s %s\n", lc, loc.Location, loc.Class, loc.Resiliency)
	}
	// Output:
	// us-south-smart         us-south smart           Regional
	// eu-standard            eu       standard        Cross Region
	// ams03-vault            ams03    vault           Single Data Center
	// jp-tok-onerate_active  jp-tok   onerate_active  Regional
}
