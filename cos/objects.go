package cos

import (
	"context"
	"fmt"
	"net/http"

	"github.com/IBM/ibm-cos-sdk-go/aws"
	"github.com/IBM/ibm-cos-sdk-go/service/s3"
)

// ListedObject is one object List found.
type ListedObject struct {
	Key  string
	Size int64
	ETag string // without quotes
}

// List returns the objects of bucket whose keys start with prefix, every
// page of ListObjectsV2, in key order. It is how the objects an image
// export wrote are found (their names are documented as a prefix and a
// block device number).
func (c *Client) List(ctx context.Context, bucket, prefix string) ([]ListedObject, error) {
	var out []ListedObject
	in := &s3.ListObjectsV2Input{Bucket: aws.String(bucket), Prefix: aws.String(prefix)}
	err := c.s3.ListObjectsV2PagesWithContext(ctx, in, func(page *s3.ListObjectsV2Output, _ bool) bool {
		for _, o := range page.Contents {
			out = append(out, ListedObject{Key: aws.StringValue(o.Key), Size: aws.Int64Value(o.Size), ETag: trimETag(aws.StringValue(o.ETag))})
		}
		return true
	})
	if err != nil {
		return nil, fmt.Errorf("cos: listing %s/%s*: %w", bucket, prefix, classify(err))
	}
	return out, nil
}

// Delete removes the object bucket/key. Deleting an object that does not
// exist succeeds (S3 answers 204 for both), so Delete can be repeated after
// an unknown outcome.
func (c *Client) Delete(ctx context.Context, bucket, key string) error {
	_, err := c.s3.DeleteObjectWithContext(ctx, &s3.DeleteObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
	if err != nil {
		if statusCode(err) == http.StatusNotFound && errorCode(err) != "NoSuchBucket" {
			return nil
		}
		return fmt.Errorf("cos: deleting %s/%s: %w", bucket, key, classify(err))
	}
	return nil
}

// classify wraps err with ErrAccessDenied or ErrBucketNotFound when its
// status says so.
func classify(err error) error {
	switch {
	case errorCode(err) == "NoSuchBucket":
		return fmt.Errorf("%w: %w", ErrBucketNotFound, err)
	case statusCode(err) == http.StatusUnauthorized || statusCode(err) == http.StatusForbidden:
		return fmt.Errorf("%w: %w", ErrAccessDenied, err)
	}
	return err
}
