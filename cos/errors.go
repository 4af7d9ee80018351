package cos

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"syscall"

	"github.com/IBM/ibm-cos-sdk-go/aws/awserr"
	"github.com/IBM/ibm-cos-sdk-go/aws/request"
)

// Sentinel errors callers can branch on with errors.Is.
var (
	// ErrTooLarge: the input is above MaxObjectSize, or a stream of unknown
	// length outgrew MaxParts × part size.
	ErrTooLarge = errors.New("cos: object too large")
	// ErrSizeMismatch: the input did not hold the number of bytes the caller
	// said it would.
	ErrSizeMismatch = errors.New("cos: input size differs from the size given")
	// ErrVerify: the object the server holds is not the one that was sent
	// or expected (ETag, size or SHA-256 differs). An uploaded object that
	// fails exists; it is not deleted.
	ErrVerify = errors.New("cos: object failed verification")
	// ErrUploadGone: the multipart upload to resume no longer exists (it was
	// completed or aborted, or expired under a lifecycle rule).
	ErrUploadGone = errors.New("cos: multipart upload no longer exists")
	// ErrNotFound: the object does not exist.
	ErrNotFound = errors.New("cos: object not found")
	// ErrAccessDenied: COS refused the credentials access to the object
	// (HTTP 401 or 403), for instance a service ID whose access policy IAM
	// has not yet made effective.
	ErrAccessDenied = errors.New("cos: access denied")
)

// UploadError is the error of a failed Upload or Resume. Its UploadState
// is what Resume needs when Resumable is set.
type UploadError struct {
	// UploadState describes the multipart upload: its UploadID is empty
	// when the failure came before one was created, or for a single PUT.
	UploadState
	// Aborted reports that the multipart upload was aborted: the server
	// holds no parts of it and there is nothing to resume.
	Aborted bool
	// Resumable reports that the multipart upload was kept and Resume with
	// the same input can finish it (see WithResumable).
	Resumable bool
	// Err is the cause.
	Err error
}

// Error says what failed and, for a kept upload, how far it got.
func (e *UploadError) Error() string {
	where := e.Bucket + "/" + e.Key
	switch {
	case e.UploadID == "":
		return fmt.Sprintf("cos: uploading %s: %v", where, e.Err)
	case e.Aborted:
		return fmt.Sprintf("cos: uploading %s (multipart upload %s aborted): %v", where, e.UploadID, e.Err)
	case e.Resumable:
		return fmt.Sprintf("cos: uploading %s (multipart upload %s kept for resume, %d parts done): %v",
			where, e.UploadID, len(e.Completed), e.Err)
	default:
		return fmt.Sprintf("cos: uploading %s (multipart upload %s): %v", where, e.UploadID, e.Err)
	}
}

// Unwrap returns the cause.
func (e *UploadError) Unwrap() error { return e.Err }

// statusCode returns the HTTP status of an SDK error, or 0.
func statusCode(err error) int {
	var rf awserr.RequestFailure
	if errors.As(err, &rf) {
		return rf.StatusCode()
	}
	return 0
}

// errorCode returns the S3 error code of an SDK error ("NoSuchUpload"), or "".
func errorCode(err error) string {
	var ae awserr.Error
	if errors.As(err, &ae) {
		return ae.Code()
	}
	return ""
}

// isCanceled reports whether err comes from a cancelled or expired context.
func isCanceled(err error) bool {
	return errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) ||
		errorCode(err) == request.CanceledErrorCode
}

// retryable reports whether sending the same request again may succeed:
// transport errors, 5xx, throttling, request timeouts and a body that
// arrived damaged (BadDigest: the server's MD5 of what it received differs
// from the Content-MD5 sent, so the bytes changed on the way). Client
// errors such as AccessDenied or NoSuchUpload are final, and so is any
// error that did not come from a request (a wrong size, a failed check).
func retryable(err error) bool {
	if err == nil || isCanceled(err) {
		return false
	}
	var ae awserr.Error
	if !errors.As(err, &ae) {
		// Errors from reading a response body.
		var ne net.Error
		return errors.As(err, &ne) || errors.Is(err, io.ErrUnexpectedEOF) ||
			errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)
	}
	switch ae.Code() {
	case "BadDigest", "RequestTimeout", "IncompleteBody", "XAmzContentSHA256Mismatch",
		"SlowDown", "ServiceUnavailable", "InternalError", "RequestTimeTooSkewed":
		return true
	case request.InvalidParameterErrCode, request.ParamRequiredErrCode, request.ErrCodeInvalidPresignExpire:
		return false
	}
	if isCredentialError(err) {
		// The IAM token client has already retried with its own backoff.
		return false
	}
	code := statusCode(err)
	switch {
	case code == 0:
		// No HTTP status: the request never got an answer (connection
		// reset, EOF, timeout, DNS) or its answer could not be read.
		return true
	case code >= 500, code == http.StatusRequestTimeout, code == http.StatusTooManyRequests:
		return true
	}
	return false
}

// isCredentialError reports an error getting credentials (an IAM token):
// not worth retrying at once, but an upload kept for Resume can finish once
// the key or IAM is back.
func isCredentialError(err error) bool {
	switch errorCode(err) {
	case "TokenManagerRetrieveError", "NoCredentialProviders", "IbmApiKeyIdNotFound", "ErrFetchingIAMToken":
		return true
	}
	return false
}

// resumable reports whether a failed upload is worth keeping for Resume.
func resumable(err error) bool {
	var se *sourceError
	return retryable(err) || isCredentialError(err) || errors.As(err, &se)
}

// sdkError is an SDK error that also unwraps to its cause: the SDK's
// awserr values carry the transport's error (a *url.Error over a
// *net.OpError or *net.DNSError) as OrigErr but have no Unwrap, so
// errors.As could not reach it through this package's errors. The SDK
// error itself stays first in the chain (statusCode and errorCode find it).
type sdkError struct{ err awserr.Error }

func (e sdkError) Error() string { return e.err.Error() }

// Code, Message and OrigErr make sdkError an awserr.Error itself.
func (e sdkError) Code() string { return e.err.Code() }

// Message returns the SDK error's message.
func (e sdkError) Message() string { return e.err.Message() }

// OrigErr returns the SDK error's cause.
func (e sdkError) OrigErr() error { return e.err.OrigErr() }

// Unwrap returns the SDK error and its cause.
func (e sdkError) Unwrap() []error {
	if orig := e.err.OrigErr(); orig != nil {
		return []error{e.err, orig}
	}
	return []error{e.err}
}

// unwrappableError runs after the SDK's send handler and wraps a
// transport error in sdkError (an awserr.Error with the same code, so the
// SDK's retry rules see no difference).
func unwrappableError(r *request.Request) {
	var se sdkError
	if ae, ok := r.Error.(awserr.Error); ok && !errors.As(r.Error, &se) {
		r.Error = sdkError{ae}
	}
}
