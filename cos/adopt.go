package cos

import (
	"context"
	"crypto/md5"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strings"
)

// adoptCompleted is Resume's answer to an upload that no longer exists. An
// attempt may have completed it and been killed before recording that; if
// the object now at the key is byte for byte what the input holds, sending
// the input again would upload it twice. adoptCompleted reads the whole
// input (sending nothing), computes the multipart ETag the object would
// have with the recorded part size, and the SHA-256, and compares them with
// the object's. It returns the verified Result when they match, nil when
// they do not (the upload was aborted, or expired, or the object is another
// one), and an error only when the check itself could not be made.
func (u *uploader) adoptCompleted(ctx context.Context, st UploadState) (*Result, error) {
	head, err := u.c.head(ctx, u.bucket, u.key)
	if errors.Is(err, ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("checking whether the upload was completed: %w", err)
	}
	if u.size >= 0 && head.Size != u.size {
		return nil, nil
	}
	multipartETag := strings.Contains(head.ETag, "-")
	if !multipartETag && head.SHA256 == "" {
		return nil, nil // nothing to recognise the object by
	}

	var in io.Reader = u.r
	if u.ra != nil {
		in = io.NewSectionReader(u.ra, u.base, u.size)
	}
	composite, whole := md5.New(), sha256.New()
	part := md5.New()
	buf := make([]byte, 1<<20)
	var total, inPart int64
	parts := 0
	flush := func() {
		composite.Write(part.Sum(nil))
		part.Reset()
		parts++
		inPart = 0
	}
	for {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		want := min(int64(len(buf)), u.partSize-inPart)
		if u.size >= 0 {
			want = min(want, u.size-total)
		}
		if want == 0 {
			break // the whole announced size has been read
		}
		n, rerr := io.ReadFull(in, buf[:want])
		part.Write(buf[:n])
		whole.Write(buf[:n])
		total, inPart = total+int64(n), inPart+int64(n)
		if inPart == u.partSize {
			flush()
		}
		if rerr == io.EOF || rerr == io.ErrUnexpectedEOF {
			break
		}
		if rerr != nil {
			return nil, fmt.Errorf("reading the input to compare it with the object: %w", rerr)
		}
	}
	if inPart > 0 {
		flush()
	}
	if total != head.Size {
		return nil, nil
	}
	sum := hex.EncodeToString(whole.Sum(nil))
	res := &Result{
		Bucket: u.bucket, Key: u.key, Size: total, ETag: head.ETag, SHA256: sum, UploadID: st.UploadID,
		PartSize: u.partSize, Parts: parts, PartsSkipped: parts,
	}
	switch {
	case multipartETag && head.ETag == fmt.Sprintf("%x-%d", composite.Sum(nil), parts):
		res.ETagVerified = true
	case head.SHA256 == "":
		return nil, nil
	}
	if head.SHA256 != "" {
		if head.SHA256 != sum {
			return nil, nil
		}
		res.SHA256Stored = true
	}
	res.Verified = true
	u.log.Info("cos: the upload to resume was completed by an earlier attempt; the object matches the input",
		"upload_id", st.UploadID, "parts", parts)
	if u.o.progress != nil {
		u.o.progress(total, total)
	}
	return res, nil
}
