package cos

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/IBM/ibm-cos-sdk-go/aws"
	"github.com/IBM/ibm-cos-sdk-go/aws/client"
	"github.com/IBM/ibm-cos-sdk-go/aws/request"
	"github.com/IBM/ibm-cos-sdk-go/service/s3"
	"github.com/e2eimage/e2eimage/internal/retry"
)

// CreateMultipartUpload is not idempotent: every request that reaches the
// server creates an upload, and an upload nobody completes or aborts is
// kept, and billed, until a lifecycle rule removes it. When the answer to a
// create is lost (the connection drops after the server did the work), the
// request that is sent again creates a second upload and the first is left
// behind with no one knowing its ID. So create sends the request without
// the SDK's retries, retries it itself, and cleans up after any attempt
// whose outcome it could not see:
//
//   - Before the first attempt it lists the pending uploads of the exact key
//     (ListMultipartUploads with the key as prefix): a snapshot of the IDs
//     that are not ours. No clock is involved, so neither the server's clock
//     nor its skew against ours matters.
//   - An attempt that failed without an answer saying the upload was not
//     created (a transport error, a cancelled request, a 5xx other than
//     503) is "uncertain" (see mayHaveCreated).
//   - Once an attempt succeeds, or every attempt has failed, and some attempt
//     was uncertain, the uploads of the key are listed again. Those that are
//     neither in the snapshot nor ours appeared while we were creating: our
//     uncertain attempts made them, or another uploader of the same key did
//     at the same moment. The two cannot be told apart (a pending upload's
//     metadata is not readable and the initiator is the same credential), so:
//     when there are no more of them than uncertain attempts, they are all
//     aborted; when there are more, another uploader is certainly at work and
//     none is aborted (a warning names them), because aborting a stranger's
//     upload makes its owner fail.
//   - An upload found this way is never adopted: if it were a concurrent
//     uploader's, two writers would put their parts into one upload. At worst
//     an abort makes a concurrent writer of the same key fail with
//     NoSuchUpload, loudly; two writers of one key race anyway, since the
//     last completion replaces the object.
//
// Not covered: a request that reaches the server only after the second
// listing (held up in a proxy longer than the whole create took) leaves an
// upload behind; so does a failure when the snapshot could not be taken
// (the credentials may not list uploads, for instance), which is logged.

// noSDKRetries sends a request once: the caller decides what to do after a
// failure.
func noSDKRetries(r *request.Request) { r.Retryer = client.NoOpRetryer{} }

// mayHaveCreated reports whether a failed create request may nevertheless
// have created an upload: it got no answer (a transport error, a cancelled
// or timed-out request: the answer may be what was lost), or a server error
// that may come after the work (500, 502, 504, ...). Throttling (429, 503
// SlowDown), 4xx refusals, invalid parameters and a missing IAM token
// (nothing was sent) are definite.
func mayHaveCreated(err error) bool {
	switch {
	case isCredentialError(err):
		return false
	case errorCode(err) == request.InvalidParameterErrCode, errorCode(err) == request.ParamRequiredErrCode:
		return false // refused by the SDK before sending
	}
	if isCanceled(err) {
		return true
	}
	code := statusCode(err)
	return code == 0 || (code >= 500 && code != http.StatusServiceUnavailable)
}

// create creates the multipart upload (see above).
func (u *uploader) create(ctx context.Context) error {
	in := &s3.CreateMultipartUploadInput{
		Bucket:   aws.String(u.bucket),
		Key:      aws.String(u.key),
		Metadata: u.metadata(),
	}
	if u.o.contentType != "" {
		in.ContentType = aws.String(u.o.contentType)
	}
	before, err := u.c.pendingIDs(ctx, u.bucket, u.key)
	if err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("creating multipart upload: %w", ctx.Err())
		}
		u.log.Debug("cos: cannot list the key's pending uploads; an upload whose create answer is lost would be left behind", "err", err)
		before = nil
	}
	uncertain := 0
	err = retry.Do(ctx, u.o.retryPolicy(u.log, "create multipart upload"), classifyRetry, func(int) error {
		out, err := u.c.s3.CreateMultipartUploadWithContext(ctx, in, noSDKRetries)
		if err == nil {
			u.uploadID = aws.StringValue(out.UploadId)
			return nil
		}
		if mayHaveCreated(err) {
			uncertain++
		}
		return err
	})
	if err != nil {
		u.sweep(ctx, before, uncertain)
		last := lastError(err)
		if ctx.Err() != nil && !errors.Is(last, ctx.Err()) {
			// The SDK's RequestCanceled does not unwrap to it.
			return fmt.Errorf("creating multipart upload: %w (%w)", ctx.Err(), last)
		}
		return fmt.Errorf("creating multipart upload: %w", last)
	}
	u.sweep(ctx, before, uncertain)
	u.log.Debug("cos: multipart upload created", "upload_id", u.uploadID, "part_size", u.partSize)
	u.mu.Lock()
	u.checkpointLocked()
	u.mu.Unlock()
	return nil
}

// sweep aborts the uploads of the key that uncertain create attempts may
// have made: those not in before and not u.uploadID ("" after a failure).
// It runs even when ctx is cancelled, bounded by abortTimeout, and only
// logs its own failures: the upload's outcome does not depend on it.
func (u *uploader) sweep(ctx context.Context, before map[string]bool, uncertain int) {
	if uncertain == 0 {
		return
	}
	if before == nil {
		u.log.Warn("cos: a create request's answer may have been lost and the key's pending uploads could not be listed before it; an upload may be left behind (see PendingUploads)")
		return
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), abortTimeout)
	defer cancel()
	now, err := u.c.pendingIDs(sctx, u.bucket, u.key)
	if err != nil {
		u.log.Warn("cos: a create request's answer may have been lost and the key's pending uploads could not be listed; an upload may be left behind (see PendingUploads)", "err", err)
		return
	}
	var found []string
	for id := range now {
		if !before[id] && id != u.uploadID {
			found = append(found, id)
		}
	}
	switch {
	case len(found) == 0:
		return
	case len(found) > uncertain:
		u.log.Warn("cos: more uploads of this key appeared than lost create requests could have made; another uploader is writing it, so none is aborted",
			"upload_ids", found, "uncertain_attempts", uncertain)
		return
	}
	for _, id := range found {
		if err := u.c.Abort(sctx, u.bucket, u.key, id); err != nil {
			u.log.Warn("cos: aborting an upload made by a create request whose answer was lost", "orphan_upload_id", id, "err", err)
			continue
		}
		u.log.Info("cos: aborted an upload made by a create request whose answer was lost", "orphan_upload_id", id)
	}
}

// pendingIDs returns the IDs of the pending multipart uploads of exactly
// key (the listing by prefix also returns longer keys).
func (c *Client) pendingIDs(ctx context.Context, bucket, key string) (map[string]bool, error) {
	list, err := c.PendingUploads(ctx, bucket, key)
	if err != nil {
		return nil, err
	}
	ids := make(map[string]bool, len(list))
	for _, p := range list {
		if p.Key == key {
			ids[p.UploadID] = true
		}
	}
	return ids, nil
}
