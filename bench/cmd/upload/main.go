// Command upload is the driver of bench/upload.sh: it encrypts and uploads
// an image in the three ways the benchmark compares, one way per run, so
// that each run's time and peak memory can be measured on its own.
//
//	upload -mode keygen   -key K
//	upload -mode mkbucket -bucket B
//	upload -mode encrypt  -in IMG -out ENC -key K            (encrypt to a file only)
//	upload -mode stream   -in IMG -key K -bucket B -object O (encrypt while uploading)
//	upload -mode twostep  -in IMG -out ENC -key K -bucket B -object O
//	upload -mode file     -in ENC -bucket B -object O        (upload an encrypted file)
//
// The COS endpoint and HMAC keys come from the environment, never from
// arguments: COS_ENDPOINT, COS_REGION (default us-south), COS_ACCESS_KEY_ID
// and COS_SECRET_ACCESS_KEY.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"time"

	"github.com/e2eimage/e2eimage/vhdcrypt"

	"github.com/e2eimage/e2eimage/cos"
	"github.com/e2eimage/e2eimage/secret"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "upload:", err)
		os.Exit(1)
	}
}

func run() error {
	mode := flag.String("mode", "", "keygen, mkbucket, encrypt, stream, twostep or file")
	in := flag.String("in", "", "input file")
	out := flag.String("out", "", "encrypted output file (encrypt, twostep)")
	keyPath := flag.String("key", "", "DEK file")
	bucket := flag.String("bucket", "", "bucket")
	object := flag.String("object", "", "object key")
	conc := flag.Int("concurrency", cos.DefaultConcurrency, "parts in flight")
	partSize := flag.Int64("part-size", 0, "part size in bytes (0: the package default)")
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	start := time.Now()

	switch *mode {
	case "keygen":
		dek, err := vhdcrypt.NewDEK(vhdcrypt.AES256XTS)
		if err != nil {
			return err
		}
		defer dek.Zero()
		return vhdcrypt.WriteKeyFile(*keyPath, dek)
	case "encrypt":
		dek, err := vhdcrypt.ReadKeyFile(*keyPath)
		if err != nil {
			return err
		}
		defer dek.Zero()
		return vhdcrypt.EncryptFile(ctx, *out, *in, dek)
	}

	client, err := clientFromEnv()
	if err != nil {
		return err
	}
	opts := []cos.Option{cos.WithConcurrency(*conc)}
	if *partSize > 0 {
		opts = append(opts, cos.WithPartSize(*partSize))
	}

	var res *cos.Result
	switch *mode {
	case "mkbucket":
		return client.CreateBucket(ctx, *bucket, cos.BucketSpec{LocationConstraint: client.Region()})
	case "stream":
		dek, err := vhdcrypt.ReadKeyFile(*keyPath)
		if err != nil {
			return err
		}
		defer dek.Zero()
		f, err := os.Open(*in)
		if err != nil {
			return err
		}
		defer f.Close()
		enc, err := vhdcrypt.NewEncryptor(ctx, f, dek)
		if err != nil {
			return err
		}
		r := enc.Reader()
		defer r.Close()
		// The encryptor knows its output size up front, so the upload
		// plans its parts from the real size even though it streams.
		res, err = client.Upload(ctx, *bucket, *object, r, enc.Size(), opts...)
		if err != nil {
			return err
		}
	case "twostep":
		dek, err := vhdcrypt.ReadKeyFile(*keyPath)
		if err != nil {
			return err
		}
		defer dek.Zero()
		if err := vhdcrypt.EncryptFile(ctx, *out, *in, dek); err != nil {
			return err
		}
		if res, err = uploadFile(ctx, client, *out, *bucket, *object, opts); err != nil {
			return err
		}
	case "file":
		if res, err = uploadFile(ctx, client, *in, *bucket, *object, opts); err != nil {
			return err
		}
	default:
		return fmt.Errorf("unknown -mode %q", *mode)
	}
	el := time.Since(start)
	fmt.Printf("%s: %d bytes in %d parts, %.3f s, %.0f MB/s, verified=%v etag=%v sha256=%s\n",
		*mode, res.Size, res.Parts, el.Seconds(), float64(res.Size)/1e6/el.Seconds(), res.Verified, res.ETagVerified, res.SHA256)
	return nil
}

func uploadFile(ctx context.Context, c *cos.Client, path, bucket, object string, opts []cos.Option) (*cos.Result, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	return c.Upload(ctx, bucket, object, f, fi.Size(), opts...)
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
