package cos

import (
	"context"
	"encoding/hex"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/IBM/ibm-cos-sdk-go/aws"
	"github.com/IBM/ibm-cos-sdk-go/service/s3"
)

// UploadState is what it takes to resume a multipart upload. It marshals to
// JSON for a state file; it holds no secret.
type UploadState struct {
	Bucket   string `json:"bucket"`
	Key      string `json:"key"`
	UploadID string `json:"upload_id"`
	// PartSize is the size of every part but the last; a resumed upload
	// must cut the input at the same places. 0 means unknown (Resume then
	// infers it from the server's part list or uses WithPartSize).
	PartSize int64 `json:"part_size"`
	// Size is the input size, or SizeUnknown.
	Size int64 `json:"size"`
	// SHA256 is the hex digest stored as x-amz-meta-sha256 when the upload
	// was created (WithSHA256), or "".
	SHA256 string `json:"sha256,omitempty"`
	// Completed lists the parts the server has acknowledged, by number.
	Completed []CompletedPart `json:"completed"`
}

// CompletedPart is one part the server has stored.
type CompletedPart struct {
	Number int    `json:"number"`
	ETag   string `json:"etag"`
	Size   int64  `json:"size"`
	// MD5 is the hex MD5 of the part's bytes, as sent in Content-MD5, or ""
	// when the part is known only from the server's list.
	MD5 string `json:"md5,omitempty"`
}

// PendingUpload is an incomplete multipart upload found in a bucket.
type PendingUpload struct {
	Key       string
	UploadID  string
	Initiated time.Time
}

// clone returns a deep copy whose Completed is sorted by part number.
func (s UploadState) clone() UploadState {
	c := s
	c.Completed = slices.Clone(s.Completed)
	slices.SortFunc(c.Completed, func(a, b CompletedPart) int { return a.Number - b.Number })
	return c
}

// RecoverState rebuilds the state of a multipart upload from the server's
// part list (ListParts), for a caller that kept only the upload ID. MD5 is
// filled from each part's ETag when the server's ETags are plain MD5s.
// PartSize is set from the largest part, which is right unless only the last
// part is listed; pass WithPartSize to Resume when in doubt.
func (c *Client) RecoverState(ctx context.Context, bucket, key, uploadID string) (UploadState, error) {
	parts, err := c.listParts(ctx, bucket, key, uploadID)
	if err != nil {
		return UploadState{}, err
	}
	st := UploadState{Bucket: bucket, Key: key, UploadID: uploadID, Size: SizeUnknown}
	for _, p := range parts {
		st.Completed = append(st.Completed, p)
		st.PartSize = max(st.PartSize, p.Size)
	}
	return st, nil
}

// listParts returns every part the server holds for an upload, by number.
func (c *Client) listParts(ctx context.Context, bucket, key, uploadID string) ([]CompletedPart, error) {
	var parts []CompletedPart
	err := c.s3.ListPartsPagesWithContext(ctx, &s3.ListPartsInput{
		Bucket: aws.String(bucket), Key: aws.String(key), UploadId: aws.String(uploadID),
	}, func(out *s3.ListPartsOutput, _ bool) bool {
		for _, p := range out.Parts {
			etag := trimETag(aws.StringValue(p.ETag))
			cp := CompletedPart{Number: int(aws.Int64Value(p.PartNumber)), ETag: etag, Size: aws.Int64Value(p.Size)}
			if isMD5Hex(etag) {
				cp.MD5 = etag
			}
			parts = append(parts, cp)
		}
		return true
	})
	if err != nil {
		if errorCode(err) == s3.ErrCodeNoSuchUpload {
			return nil, fmt.Errorf("cos: listing parts of %s/%s upload %s: %w", bucket, key, uploadID, ErrUploadGone)
		}
		return nil, fmt.Errorf("cos: listing parts of %s/%s upload %s: %w", bucket, key, uploadID, err)
	}
	slices.SortFunc(parts, func(a, b CompletedPart) int { return a.Number - b.Number })
	return parts, nil
}

// Abort aborts a multipart upload, deleting its parts. Aborting an upload
// that no longer exists is not an error.
func (c *Client) Abort(ctx context.Context, bucket, key, uploadID string) error {
	_, err := c.s3.AbortMultipartUploadWithContext(ctx, &s3.AbortMultipartUploadInput{
		Bucket: aws.String(bucket), Key: aws.String(key), UploadId: aws.String(uploadID),
	})
	if err != nil && errorCode(err) != s3.ErrCodeNoSuchUpload {
		return fmt.Errorf("cos: aborting %s/%s upload %s: %w", bucket, key, uploadID, err)
	}
	return nil
}

// PendingUploads lists the incomplete multipart uploads in bucket whose
// keys start with prefix, to find what an interrupted run left behind.
func (c *Client) PendingUploads(ctx context.Context, bucket, prefix string) ([]PendingUpload, error) {
	var out []PendingUpload
	in := &s3.ListMultipartUploadsInput{Bucket: aws.String(bucket)}
	if prefix != "" {
		in.Prefix = aws.String(prefix)
	}
	err := c.s3.ListMultipartUploadsPagesWithContext(ctx, in, func(page *s3.ListMultipartUploadsOutput, _ bool) bool {
		for _, u := range page.Uploads {
			out = append(out, PendingUpload{
				Key:       aws.StringValue(u.Key),
				UploadID:  aws.StringValue(u.UploadId),
				Initiated: aws.TimeValue(u.Initiated),
			})
		}
		return true
	})
	if err != nil {
		if errorCode(err) == s3.ErrCodeNoSuchUpload {
			// gofakes3 answers so for a bucket that never had an upload;
			// no listing names one upload, so it can only mean none.
			return nil, nil
		}
		return nil, fmt.Errorf("cos: listing pending uploads in %s: %w", bucket, err)
	}
	return out, nil
}

// trimETag removes the quotes S3 puts around ETags.
func trimETag(s string) string { return strings.Trim(s, `"`) }

// isMD5Hex reports whether s looks like a hex MD5 (32 hex digits).
func isMD5Hex(s string) bool {
	if len(s) != 32 {
		return false
	}
	_, err := hex.DecodeString(s)
	return err == nil
}
