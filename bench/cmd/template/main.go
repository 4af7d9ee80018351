// Command template is the driver of bench/template.sh: it turns an image
// object in COS (an exported template's boot disk) into a new object, one
// way per run, so that each run's time and peak memory can be measured on
// its own:
//
//	template -mode copy    -bucket B -src SRC -dst DST            (plain download + upload)
//	template -mode encrypt -bucket B -src SRC -dst DST -key K     (COS to COS encryption)
//
// copy is the baseline: the object read front to back by the same cos
// client (one ranged GET per read of the uploader, read-ahead off) and
// streamed into a multipart upload. encrypt is what e2e.Run does with
// Plan.SourceTemplate: the object opened with cos.OpenObject
// (e2e.SourceHeadCache, the default read-ahead: 16 MiB windows, two ahead),
// encrypted by vhdcrypt reading it with random access (at least 4 workers;
// WithoutZeroScan, so the block table alone plans the output), and
// streamed into the same multipart upload. Nothing is written to local
// disk in either mode.
//
// The COS endpoint and HMAC keys come from the environment, as for
// bench/cmd/upload: COS_ENDPOINT, COS_REGION (default us-south),
// COS_ACCESS_KEY_ID and COS_SECRET_ACCESS_KEY.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime"
	"time"

	"github.com/e2eimage/e2eimage/cos"
	"github.com/e2eimage/e2eimage/e2e"
	"github.com/e2eimage/e2eimage/secret"
	"github.com/e2eimage/e2eimage/vhdcrypt"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "template:", err)
		os.Exit(1)
	}
}

// frontToBack hides the io.ReaderAt of its reader, so that the upload reads
// it as a stream, front to back.
type frontToBack struct{ r io.Reader }

func (f frontToBack) Read(p []byte) (int, error) { return f.r.Read(p) }

func run() error {
	mode := flag.String("mode", "", "copy or encrypt")
	bucket := flag.String("bucket", "", "bucket")
	src := flag.String("src", "", "source object key")
	dst := flag.String("dst", "", "destination object key")
	keyPath := flag.String("key", "", "DEK file (encrypt)")
	conc := flag.Int("concurrency", cos.DefaultConcurrency, "parts in flight")
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	client, err := clientFromEnv()
	if err != nil {
		return err
	}
	start := time.Now()
	opts := []cos.Option{cos.WithConcurrency(*conc), cos.WithContentType("application/octet-stream")}
	var (
		res   *cos.Result
		stats cos.ObjectStats
		obj   *cos.Object
	)
	switch *mode {
	case "copy":
		// The baseline stays a plain copy: one GET per read of the
		// uploader's, front to back, no read-ahead.
		if obj, err = client.OpenObject(ctx, *bucket, *src, cos.WithReadAhead(0, 0)); err != nil {
			return err
		}
		body := frontToBack{io.NewSectionReader(obj, 0, obj.Size())}
		if res, err = client.Upload(ctx, *bucket, *dst, body, obj.Size(), opts...); err != nil {
			return err
		}
	case "encrypt":
		dek, err := vhdcrypt.ReadKeyFile(*keyPath)
		if err != nil {
			return err
		}
		defer dek.Zero()
		if obj, err = client.OpenObject(ctx, *bucket, *src, cos.WithHeadCache(e2e.SourceHeadCache)); err != nil {
			return err
		}
		workers := max(runtime.GOMAXPROCS(0), 4) // as e2e.Run for a remote source
		enc, err := vhdcrypt.NewEncryptor(ctx, io.NewSectionReader(obj, 0, obj.Size()), dek,
			vhdcrypt.WithWorkers(workers), vhdcrypt.WithoutZeroScan())
		if err != nil {
			return err
		}
		r := enc.Reader()
		defer r.Close()
		if res, err = client.Upload(ctx, *bucket, *dst, r, enc.Size(), opts...); err != nil {
			return err
		}
	default:
		return fmt.Errorf("unknown -mode %q", *mode)
	}
	stats = obj.Stats()
	el := time.Since(start)
	fmt.Printf("%s: read %d of %d bytes in %d GETs, wrote %d bytes in %d parts, %.3f s, verified=%v\n",
		*mode, stats.Bytes, obj.Size(), stats.Requests, res.Size, res.Parts, el.Seconds(), res.Verified)
	if stats.Bytes > obj.Size()+obj.Size()/100 {
		return fmt.Errorf("read %d bytes of a %d-byte object: more than once", stats.Bytes, obj.Size())
	}
	return nil
}

func clientFromEnv() (*cos.Client, error) {
	endpoint := os.Getenv("COS_ENDPOINT")
	id := os.Getenv("COS_ACCESS_KEY_ID")
	sk := os.Getenv("COS_SECRET_ACCESS_KEY")
	if endpoint == "" || id == "" || sk == "" {
		return nil, errors.New("set COS_ENDPOINT, COS_ACCESS_KEY_ID and COS_SECRET_ACCESS_KEY")
	}
	region := os.Getenv("COS_REGION")
	if region == "" {
		region = "us-south"
	}
	return cos.New(cos.Config{
		Region:   region,
		Endpoint: endpoint,
		HMAC:     &cos.HMAC{AccessKeyID: id, SecretAccessKey: secret.NewString(sk)},
	})
}
