package s3sim

import (
	"crypto/md5"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/johannesboyne/gofakes3"
)

// fileBackend is a gofakes3 backend (with multipart support) that keeps
// object data in files and only metadata in memory. A completed multipart
// upload becomes an object made of its part files, in order, so that
// completing a 1 GiB upload copies nothing and memory stays flat.
type fileBackend struct {
	dir string
	now func() time.Time

	mu      sync.RWMutex
	buckets map[string]*fbucket
	uploads map[gofakes3.UploadID]*fupload
}

type fbucket struct {
	name    string
	created time.Time
	objects map[string]*fobject
}

// fobject is one object: the concatenation of its files.
type fobject struct {
	key  string
	meta map[string]string
	size int64
	// hash is the MD5 of the content for an object stored by one PUT, and
	// the MD5 of the parts' binary MD5s for a completed multipart upload.
	hash []byte
	// parts is the number of parts of a completed multipart upload, 0 for
	// an object stored by one PUT.
	parts    int
	modified time.Time
	files    []string
	sizes    []int64
}

// etag is the object's ETag, quoted, as S3 and COS give it on HEAD, GET,
// listings and completion: the hex MD5 of the content for a single PUT, and
// for a multipart upload the hex MD5 of the concatenated binary MD5s of its
// parts followed by "-" and the number of parts.
func (o *fobject) etag() string {
	if o.parts > 0 {
		return fmt.Sprintf(`"%s-%d"`, hex.EncodeToString(o.hash), o.parts)
	}
	return gofakes3.FormatETag(o.hash)
}

// objectETag returns the quoted ETag of an object, and false when the
// bucket or object does not exist.
func (b *fileBackend) objectETag(bucket, key string) (string, bool) {
	b.mu.RLock()
	defer b.mu.RUnlock()
	o, err := b.object(bucket, key)
	if err != nil {
		return "", false
	}
	return o.etag(), true
}

// fullETag turns the ETag gofakes3 wrote for an object (the hex of its
// hash, quoted) into the object's ETag, adding the "-N" suffix of a
// multipart object. Another ETag, that of an object replaced in between,
// is returned unchanged.
func (b *fileBackend) fullETag(bucket, key, written string) string {
	b.mu.RLock()
	defer b.mu.RUnlock()
	o, err := b.object(bucket, key)
	if err != nil || gofakes3.FormatETag(o.hash) != written {
		return written
	}
	return o.etag()
}

type fupload struct {
	id        gofakes3.UploadID
	bucket    string
	key       string
	meta      map[string]string
	initiated time.Time
	parts     map[int]*fpart
}

type fpart struct {
	num      int
	path     string
	size     int64
	etag     string // quoted
	modified time.Time
}

var (
	_ gofakes3.Backend          = (*fileBackend)(nil)
	_ gofakes3.MultipartBackend = (*fileBackend)(nil)
)

func newFileBackend(dir string, now func() time.Time) (*fileBackend, error) {
	if err := os.MkdirAll(filepath.Join(dir, "data"), 0o700); err != nil {
		return nil, fmt.Errorf("s3sim: creating the data directory: %w", err)
	}
	return &fileBackend{
		dir: dir, now: now,
		buckets: make(map[string]*fbucket),
		uploads: make(map[gofakes3.UploadID]*fupload),
	}, nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// writeFile streams r into a new data file, checking it holds exactly size
// bytes (size < 0: any), and returns its path, length and MD5.
func (b *fileBackend) writeFile(r io.Reader, size int64) (string, int64, []byte, error) {
	path := filepath.Join(b.dir, "data", randomHex(16))
	f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return "", 0, nil, fmt.Errorf("s3sim: creating a data file: %w", err)
	}
	h := md5.New()
	n, err := io.Copy(io.MultiWriter(f, h), r)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil && size >= 0 && n != size {
		err = gofakes3.ErrIncompleteBody
	}
	if err != nil {
		_ = os.Remove(path)
		if errors.Is(err, gofakes3.ErrIncompleteBody) {
			return "", 0, nil, err
		}
		return "", 0, nil, fmt.Errorf("s3sim: writing a data file: %w", err)
	}
	return path, n, h.Sum(nil), nil
}

func removeFiles(paths []string) {
	for _, p := range paths {
		_ = os.Remove(p)
	}
}

func (b *fileBackend) ListBuckets() ([]gofakes3.BucketInfo, error) {
	b.mu.RLock()
	defer b.mu.RUnlock()
	out := make([]gofakes3.BucketInfo, 0, len(b.buckets))
	for _, bk := range b.buckets {
		out = append(out, gofakes3.BucketInfo{Name: bk.name, CreationDate: gofakes3.NewContentTime(bk.created)})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

func (b *fileBackend) ListBucket(name string, prefix *gofakes3.Prefix, page gofakes3.ListBucketPage) (*gofakes3.ObjectList, error) {
	if prefix == nil {
		prefix = &gofakes3.Prefix{}
	}
	b.mu.RLock()
	defer b.mu.RUnlock()
	bk := b.buckets[name]
	if bk == nil {
		return nil, gofakes3.BucketNotFound(name)
	}
	keys := make([]string, 0, len(bk.objects))
	for k := range bk.objects {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	resp := gofakes3.NewObjectList()
	var match gofakes3.PrefixMatch
	var cnt int64
	var lastPrefix string
	for i, k := range keys {
		if page.HasMarker && k <= page.Marker {
			continue
		}
		if !prefix.Match(k, &match) {
			continue
		}
		if match.CommonPrefix {
			if match.MatchedPart == lastPrefix {
				continue
			}
			resp.AddPrefix(match.MatchedPart)
			lastPrefix = match.MatchedPart
		} else {
			o := bk.objects[k]
			resp.Add(&gofakes3.Content{
				Key: k, LastModified: gofakes3.NewContentTime(o.modified),
				ETag: o.etag(), Size: o.size, StorageClass: "STANDARD",
			})
		}
		cnt++
		if page.MaxKeys > 0 && cnt >= page.MaxKeys {
			resp.NextMarker = k
			resp.IsTruncated = i < len(keys)-1
			break
		}
	}
	return resp, nil
}

func (b *fileBackend) CreateBucket(name string) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.buckets[name] != nil {
		return gofakes3.ResourceError(gofakes3.ErrBucketAlreadyExists, name)
	}
	b.buckets[name] = &fbucket{name: name, created: b.now(), objects: make(map[string]*fobject)}
	return nil
}

func (b *fileBackend) BucketExists(name string) (bool, error) {
	b.mu.RLock()
	defer b.mu.RUnlock()
	return b.buckets[name] != nil, nil
}

func (b *fileBackend) DeleteBucket(name string) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	bk := b.buckets[name]
	if bk == nil {
		return gofakes3.BucketNotFound(name)
	}
	if len(bk.objects) > 0 {
		return gofakes3.ResourceError(gofakes3.ErrBucketNotEmpty, name)
	}
	b.dropUploadsLocked(name)
	delete(b.buckets, name)
	return nil
}

func (b *fileBackend) ForceDeleteBucket(name string) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	bk := b.buckets[name]
	if bk == nil {
		return gofakes3.BucketNotFound(name)
	}
	for _, o := range bk.objects {
		removeFiles(o.files)
	}
	b.dropUploadsLocked(name)
	delete(b.buckets, name)
	return nil
}

func (b *fileBackend) dropUploadsLocked(bucket string) {
	for id, u := range b.uploads {
		if u.bucket == bucket {
			for _, p := range u.parts {
				_ = os.Remove(p.path)
			}
			delete(b.uploads, id)
		}
	}
}

func (b *fileBackend) object(bucket, key string) (*fobject, error) {
	bk := b.buckets[bucket]
	if bk == nil {
		return nil, gofakes3.BucketNotFound(bucket)
	}
	o := bk.objects[key]
	if o == nil {
		return nil, gofakes3.KeyNotFound(key)
	}
	return o, nil
}

func copyMeta(m map[string]string) map[string]string {
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

func (b *fileBackend) HeadObject(bucket, key string) (*gofakes3.Object, error) {
	b.mu.RLock()
	defer b.mu.RUnlock()
	o, err := b.object(bucket, key)
	if err != nil {
		return nil, err
	}
	return &gofakes3.Object{Name: key, Metadata: copyMeta(o.meta), Size: o.size, Hash: o.hash, Contents: io.NopCloser(strings.NewReader(""))}, nil
}

func (b *fileBackend) GetObject(bucket, key string, rangeRequest *gofakes3.ObjectRangeRequest) (*gofakes3.Object, error) {
	b.mu.RLock()
	o, err := b.object(bucket, key)
	if err != nil {
		b.mu.RUnlock()
		return nil, err
	}
	// Open the files under the lock: a concurrent overwrite then unlinks
	// files this reader already holds open, which POSIX allows.
	rd, err := openObject(o)
	meta, size, sum := copyMeta(o.meta), o.size, o.hash
	b.mu.RUnlock()
	if err != nil {
		return nil, err
	}
	rnge, err := rangeRequest.Range(size)
	if err != nil {
		_ = rd.Close()
		return nil, err
	}
	var contents io.ReadCloser = rd
	if rnge != nil {
		if _, err := rd.Seek(rnge.Start, io.SeekStart); err != nil {
			_ = rd.Close()
			return nil, err
		}
		contents = struct {
			io.Reader
			io.Closer
		}{io.LimitReader(rd, rnge.Length), rd}
	}
	return &gofakes3.Object{Name: key, Metadata: meta, Size: size, Hash: sum, Range: rnge, Contents: contents}, nil
}

func (b *fileBackend) PutObject(bucket, key string, meta map[string]string, input io.Reader, size int64, conditions *gofakes3.PutConditions) (gofakes3.PutObjectResult, error) {
	if ok, _ := b.BucketExists(bucket); !ok {
		return gofakes3.PutObjectResult{}, gofakes3.BucketNotFound(bucket)
	}
	path, n, sum, err := b.writeFile(input, size)
	if err != nil {
		return gofakes3.PutObjectResult{}, err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	bk := b.buckets[bucket]
	if bk == nil {
		_ = os.Remove(path)
		return gofakes3.PutObjectResult{}, gofakes3.BucketNotFound(bucket)
	}
	if conditions != nil {
		info := &gofakes3.ConditionalObjectInfo{}
		cond := *conditions
		if old := bk.objects[key]; old != nil {
			info.Exists, info.Hash = true, old.hash
			// gofakes3 compares If-Match with the hex of the hash; a
			// multipart object's ETag carries "-N" as well.
			if cond.IfMatch != nil && sameETag(*cond.IfMatch, old.etag()) {
				plain := gofakes3.FormatETag(old.hash)
				cond.IfMatch = &plain
			}
		}
		if err := gofakes3.CheckPutConditions(&cond, info); err != nil {
			_ = os.Remove(path)
			return gofakes3.PutObjectResult{}, err
		}
	}
	b.replaceLocked(bk, &fobject{key: key, meta: copyMeta(meta), size: n, hash: sum, modified: b.now(), files: []string{path}, sizes: []int64{n}})
	return gofakes3.PutObjectResult{}, nil
}

func (b *fileBackend) replaceLocked(bk *fbucket, o *fobject) {
	if old := bk.objects[o.key]; old != nil {
		removeFiles(old.files)
	}
	bk.objects[o.key] = o
}

func (b *fileBackend) DeleteObject(bucket, key string) (gofakes3.ObjectDeleteResult, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	bk := b.buckets[bucket]
	if bk == nil {
		return gofakes3.ObjectDeleteResult{}, gofakes3.BucketNotFound(bucket)
	}
	if o := bk.objects[key]; o != nil {
		removeFiles(o.files)
		delete(bk.objects, key)
	}
	return gofakes3.ObjectDeleteResult{}, nil
}

func (b *fileBackend) DeleteMulti(bucket string, keys ...string) (gofakes3.MultiDeleteResult, error) {
	var res gofakes3.MultiDeleteResult
	for _, k := range keys {
		if _, err := b.DeleteObject(bucket, k); err != nil {
			res.Error = append(res.Error, gofakes3.ErrorResult{Key: k, Code: gofakes3.ErrInternal, Message: err.Error()})
			continue
		}
		res.Deleted = append(res.Deleted, gofakes3.ObjectID{Key: k})
	}
	return res, nil
}

// CopyObject copies through GetObject and PutObject. The copy is stored by
// one PUT, so its ETag is the MD5 of its content, as S3 gives a copy made
// by CopyObject; gofakes3's helper would report the source's hash.
func (b *fileBackend) CopyObject(srcBucket, srcKey, dstBucket, dstKey string, meta map[string]string) (gofakes3.CopyObjectResult, error) {
	res, err := gofakes3.CopyObject(b, srcBucket, srcKey, dstBucket, dstKey, meta)
	if err != nil {
		return res, err
	}
	if etag, ok := b.objectETag(dstBucket, dstKey); ok {
		res.ETag = etag
	}
	return res, nil
}

// Multipart uploads.

func (b *fileBackend) CreateMultipartUpload(bucket, key string, meta map[string]string) (gofakes3.UploadID, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.buckets[bucket] == nil {
		return "", gofakes3.BucketNotFound(bucket)
	}
	id := gofakes3.UploadID(randomHex(16))
	b.uploads[id] = &fupload{id: id, bucket: bucket, key: key, meta: copyMeta(meta), initiated: b.now(), parts: make(map[int]*fpart)}
	return id, nil
}

func (b *fileBackend) upload(bucket, key string, id gofakes3.UploadID) (*fupload, error) {
	u := b.uploads[id]
	if u == nil || u.bucket != bucket || u.key != key {
		return nil, gofakes3.ErrNoSuchUpload
	}
	return u, nil
}

func (b *fileBackend) UploadPart(bucket, key string, id gofakes3.UploadID, partNumber int, contentLength int64, input io.Reader) (string, error) {
	if partNumber < 1 || partNumber > gofakes3.MaxUploadPartNumber {
		return "", gofakes3.ErrInvalidPart
	}
	b.mu.RLock()
	_, err := b.upload(bucket, key, id)
	b.mu.RUnlock()
	if err != nil {
		return "", err
	}
	path, n, sum, err := b.writeFile(input, contentLength)
	if err != nil {
		return "", err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	u, err := b.upload(bucket, key, id)
	if err != nil { // aborted meanwhile
		_ = os.Remove(path)
		return "", err
	}
	if old := u.parts[partNumber]; old != nil {
		_ = os.Remove(old.path)
	}
	p := &fpart{num: partNumber, path: path, size: n, etag: gofakes3.FormatETag(sum), modified: b.now()}
	u.parts[partNumber] = p
	return p.etag, nil
}

func (b *fileBackend) ListMultipartUploads(bucket string, marker *gofakes3.UploadListMarker, prefix gofakes3.Prefix, limit int64) (*gofakes3.ListMultipartUploadsResult, error) {
	b.mu.RLock()
	defer b.mu.RUnlock()
	if b.buckets[bucket] == nil {
		return nil, gofakes3.BucketNotFound(bucket)
	}
	var list []*fupload
	for _, u := range b.uploads {
		if u.bucket == bucket {
			list = append(list, u)
		}
	}
	sort.Slice(list, func(i, j int) bool {
		if list[i].key != list[j].key {
			return list[i].key < list[j].key
		}
		if !list[i].initiated.Equal(list[j].initiated) {
			return list[i].initiated.Before(list[j].initiated)
		}
		return list[i].id < list[j].id
	})
	res := &gofakes3.ListMultipartUploadsResult{Bucket: bucket, Prefix: prefix.Prefix, Delimiter: prefix.Delimiter, MaxUploads: limit}
	if marker != nil {
		res.KeyMarker, res.UploadIDMarker = marker.Object, marker.UploadID
	}
	seen := map[string]bool{}
	var match gofakes3.PrefixMatch
	var cnt int64
	for i, u := range list {
		if marker != nil {
			if u.key < marker.Object || (u.key == marker.Object && (marker.UploadID == "" || u.id <= marker.UploadID)) {
				continue
			}
		}
		if !prefix.Match(u.key, &match) {
			continue
		}
		if limit > 0 && cnt >= limit {
			res.IsTruncated = true
			prev := list[i-1]
			res.NextKeyMarker, res.NextUploadIDMarker = prev.key, prev.id
			break
		}
		if match.CommonPrefix {
			if !seen[match.MatchedPart] {
				seen[match.MatchedPart] = true
				res.CommonPrefixes = append(res.CommonPrefixes, match.AsCommonPrefix())
				cnt++
			}
			continue
		}
		res.Uploads = append(res.Uploads, gofakes3.ListMultipartUploadItem{
			Key: u.key, UploadID: u.id, StorageClass: "STANDARD", Initiated: gofakes3.NewContentTime(u.initiated),
		})
		cnt++
	}
	return res, nil
}

func (b *fileBackend) sortedParts(u *fupload) []*fpart {
	ps := make([]*fpart, 0, len(u.parts))
	for _, p := range u.parts {
		ps = append(ps, p)
	}
	sort.Slice(ps, func(i, j int) bool { return ps[i].num < ps[j].num })
	return ps
}

func (b *fileBackend) ListParts(bucket, key string, id gofakes3.UploadID, marker int, limit int64) (*gofakes3.ListMultipartUploadPartsResult, error) {
	b.mu.RLock()
	defer b.mu.RUnlock()
	u, err := b.upload(bucket, key, id)
	if err != nil {
		return nil, err
	}
	res := &gofakes3.ListMultipartUploadPartsResult{
		Bucket: bucket, Key: key, UploadID: id, StorageClass: "STANDARD",
		PartNumberMarker: marker, MaxParts: limit,
	}
	var cnt int64
	for _, p := range b.sortedParts(u) {
		if p.num <= marker {
			continue
		}
		if limit > 0 && cnt >= limit {
			res.IsTruncated = true
			break
		}
		res.Parts = append(res.Parts, gofakes3.ListMultipartUploadPartItem{
			PartNumber: p.num, ETag: p.etag, Size: p.size, LastModified: gofakes3.NewContentTime(p.modified),
		})
		res.NextPartNumberMarker = p.num
		cnt++
	}
	return res, nil
}

func (b *fileBackend) AbortMultipartUpload(bucket, key string, id gofakes3.UploadID) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	u, err := b.upload(bucket, key, id)
	if err != nil {
		return err
	}
	for _, p := range u.parts {
		_ = os.Remove(p.path)
	}
	delete(b.uploads, id)
	return nil
}

// partSizes returns the sizes of the parts a complete request names, for
// the minimum part size check made before completing.
func (b *fileBackend) partSizes(bucket, key string, id gofakes3.UploadID, nums []int) (map[int]int64, error) {
	b.mu.RLock()
	defer b.mu.RUnlock()
	u, err := b.upload(bucket, key, id)
	if err != nil {
		return nil, err
	}
	out := make(map[int]int64, len(nums))
	for _, n := range nums {
		if p := u.parts[n]; p != nil {
			out[n] = p.size
		}
	}
	return out, nil
}

func (b *fileBackend) CompleteMultipartUpload(bucket, key string, id gofakes3.UploadID, in *gofakes3.CompleteMultipartUploadRequest) (gofakes3.VersionID, string, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	u, err := b.upload(bucket, key, id)
	if err != nil {
		return "", "", err
	}
	bk := b.buckets[bucket]
	if bk == nil {
		return "", "", gofakes3.BucketNotFound(bucket)
	}
	if len(in.Parts) == 0 {
		return "", "", gofakes3.ErrorMessage(gofakes3.ErrMalformedXML, "the request names no parts")
	}
	prev := 0
	var files []string
	var sizes []int64
	var total int64
	var md5s hash.Hash = md5.New()
	used := map[int]bool{}
	for _, cp := range in.Parts {
		if cp.PartNumber <= prev {
			return "", "", gofakes3.ErrInvalidPartOrder
		}
		prev = cp.PartNumber
		p := u.parts[cp.PartNumber]
		if p == nil || strings.Trim(cp.ETag, `"`) != strings.Trim(p.etag, `"`) {
			return "", "", gofakes3.ErrorMessagef(gofakes3.ErrInvalidPart, "part %d was not uploaded or its ETag differs", cp.PartNumber)
		}
		raw, _ := hex.DecodeString(strings.Trim(p.etag, `"`))
		md5s.Write(raw)
		files = append(files, p.path)
		sizes = append(sizes, p.size)
		total += p.size
		used[p.num] = true
	}
	for n, p := range u.parts {
		if !used[n] {
			_ = os.Remove(p.path)
		}
	}
	delete(b.uploads, id)
	sum := md5s.Sum(nil)
	o := &fobject{key: key, meta: u.meta, size: total, hash: sum, parts: len(in.Parts), modified: b.now(), files: files, sizes: sizes}
	b.replaceLocked(bk, o)
	return "", o.etag(), nil
}

// pending counts the multipart uploads in progress in a bucket.
func (b *fileBackend) pending(bucket string) int {
	b.mu.RLock()
	defer b.mu.RUnlock()
	n := 0
	for _, u := range b.uploads {
		if u.bucket == bucket {
			n++
		}
	}
	return n
}

// open returns a reader over an object.
func (b *fileBackend) open(bucket, key string) (*objectReader, error) {
	b.mu.RLock()
	defer b.mu.RUnlock()
	o, err := b.object(bucket, key)
	if err != nil {
		return nil, err
	}
	return openObject(o)
}

// objectReader reads an object made of several files as one stream. It
// implements io.ReadSeekCloser and io.ReaderAt.
type objectReader struct {
	files []*os.File
	offs  []int64 // start offset of each file
	size  int64
	pos   int64
}

func openObject(o *fobject) (*objectReader, error) {
	r := &objectReader{size: o.size}
	var off int64
	for i, p := range o.files {
		f, err := os.Open(p)
		if err != nil {
			_ = r.Close()
			return nil, fmt.Errorf("s3sim: opening object data: %w", err)
		}
		r.files = append(r.files, f)
		r.offs = append(r.offs, off)
		off += o.sizes[i]
	}
	return r, nil
}

func (r *objectReader) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, errors.New("s3sim: negative offset")
	}
	if off >= r.size {
		return 0, io.EOF
	}
	n := 0
	for n < len(p) && off < r.size {
		i := sort.Search(len(r.offs), func(i int) bool { return r.offs[i] > off }) - 1
		end := r.size
		if i+1 < len(r.offs) {
			end = r.offs[i+1]
		}
		chunk := p[n:min(len(p), n+int(end-off))]
		m, err := r.files[i].ReadAt(chunk, off-r.offs[i])
		n += m
		off += int64(m)
		if err != nil && !(errors.Is(err, io.EOF) && m == len(chunk)) {
			return n, err
		}
	}
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

func (r *objectReader) Read(p []byte) (int, error) {
	if r.pos >= r.size {
		return 0, io.EOF
	}
	n, err := r.ReadAt(p, r.pos)
	r.pos += int64(n)
	if errors.Is(err, io.EOF) && n > 0 {
		err = nil
	}
	return n, err
}

func (r *objectReader) Seek(offset int64, whence int) (int64, error) {
	var abs int64
	switch whence {
	case io.SeekStart:
		abs = offset
	case io.SeekCurrent:
		abs = r.pos + offset
	case io.SeekEnd:
		abs = r.size + offset
	default:
		return 0, errors.New("s3sim: bad whence")
	}
	if abs < 0 {
		return 0, errors.New("s3sim: negative position")
	}
	r.pos = abs
	return abs, nil
}

func (r *objectReader) Close() error {
	var errs []error
	for _, f := range r.files {
		if err := f.Close(); err != nil {
			errs = append(errs, err)
		}
	}
	r.files = nil
	return errors.Join(errs...)
}
