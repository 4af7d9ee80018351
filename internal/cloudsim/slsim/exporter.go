package slsim

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/IBM/ibm-cos-sdk-go/aws"
	"github.com/IBM/ibm-cos-sdk-go/service/s3"
	"github.com/IBM/ibm-cos-sdk-go/service/s3/s3manager"
	"github.com/softlayer/softlayer-go/datatypes"

	"github.com/e2eimage/e2eimage/internal/cloudsim/simcore"
	"github.com/e2eimage/e2eimage/secret"
)

// ReasonExportSourceGone: the simulator keeps no copy of an imported image;
// an export streams the original object, so it fails when that object (or
// the import's API key) is no longer usable.
const ReasonExportSourceGone = "the image's source object is no longer readable"

// ExportObjectName is the object name copyToIcos writes for block device n
// of a template exported to a uri whose object (file) name is uriObject.
// IBM documents: "if your image file is named image.vhd, the first block
// device is exported as image-0.vhd. The second block device is exported
// as image-1.vhd" (image-templates export-image-ibm-cos.md). For a file
// name without ".vhd" the simulator appends "-<n>.vhd" (invented).
func ExportObjectName(uriObject string, n int) string {
	stem := uriObject
	if len(stem) > 4 && strings.EqualFold(stem[len(stem)-4:], ".vhd") {
		stem = stem[:len(stem)-4]
	}
	return fmt.Sprintf("%s-%d.vhd", stem, n)
}

type exportJob struct {
	templateID int
	acct       *account
	who        actor
	name       string
	src        cosURI
	srcKey     *secret.String
	dst        cosURI
	dstKey     *secret.String
	dstName    string     // the URI's file name, before ExportObjectName
	seed       []seedDisk // a seeded template's disks (SeedTemplate)
}

// copyToIcos serves the export: validate now, copy asynchronously.
func (s *Server) copyToIcos(c *call) (any, error) {
	var cfg datatypes.Container_Virtual_Guest_Block_Device_Template_Configuration
	ok, err := c.param(0, &cfg)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, errPublic("copyToIcos needs a SoftLayer_Container_Virtual_Guest_Block_Device_Template_Configuration parameter.")
	}
	uri := deref(cfg.Uri)
	if uri == "" {
		return nil, errPublic("Property 'uri' is required to export an image (cos://<region>/<bucket>/<object>).")
	}
	dst, err := parseCOSURI(uri)
	if err != nil {
		return nil, err
	}
	if deref(cfg.IbmApiKey) == "" {
		return nil, errPublic("Property 'ibmApiKey' is required to export an image to IBM Cloud Object Storage.")
	}

	s.mu.Lock()
	t, err := s.lookupTemplate(c)
	if err != nil {
		s.mu.Unlock()
		return nil, err
	}
	if t.parentID != 0 {
		if p, ok := s.templates[t.parentID]; ok {
			t = p
		}
	}
	// IBM allows exporting standard and encrypted templates ("a
	// preexisting, private standard image template, or an encrypted image
	// template", export-image-ibm-cos.md). The refusals below and their
	// messages are invented.
	imp := s.importChild(t)
	switch {
	case t.status != TemplateStatusActive:
		s.mu.Unlock()
		return nil, errPublic("Image template %d is not Active (status %s) and cannot be exported.", t.id, templateStatuses[t.status].name)
	case imp == nil || !imp.ready:
		s.mu.Unlock()
		return nil, errPublic("Image template %d has no completed image yet; export it once its import is done.", t.id)
	case t.tx != nil:
		s.mu.Unlock()
		return nil, errPublic("Image template %d has an active transaction (%s); try again later.", t.id, t.tx.name)
	}
	dstName := dst.key
	dst.key = ExportObjectName(dst.key, 0)
	now := s.clock.Now()
	t.tx = &transaction{id: s.nextTx(), name: TxExport, created: now, change: now}
	job := &exportJob{templateID: t.id, acct: c.acct, who: c.actor(), name: t.name, src: t.src,
		srcKey: secret.NewString(t.apiKey.Reveal()), dst: dst, dstKey: secret.NewString(deref(cfg.IbmApiKey)),
		dstName: dstName, seed: t.seed}
	ctx, cancel := context.WithCancel(s.ctx)
	if !s.goBackground(ctx, func(ctx context.Context) { s.runExport(ctx, job) }) {
		t.tx = nil
		s.mu.Unlock()
		cancel()
		return nil, errPublic("The service is shutting down.")
	}
	t.cancel = cancel
	meta := map[string]any{"uri": dst.String()}
	s.logEvent(c.acct, job.who, false, ObjectImage, t.id, EventExportStarted, t.name, meta)
	ev := s.auditEvent(c.acct, job.who, ActionTemplateExport, simcore.OutcomePending, "image-template", t.id, t.name, 202, "", meta, nil)
	s.mu.Unlock()
	s.emit(ev)
	return true, nil
}

func (s *Server) runExport(ctx context.Context, j *exportJob) {
	defer j.srcKey.Zero()
	defer j.dstKey.Zero()
	err := s.exportImage(ctx, j)
	if err == nil {
		err = s.clock.Sleep(ctx, s.cfg.ImportDuration)
	}
	if ctx.Err() != nil {
		return
	}
	var f *importFailure
	if err != nil && !errors.As(err, &f) {
		f = &importFailure{reason: ReasonInternal, detail: err.Error(), internal: true}
	}
	s.mu.Lock()
	t, ok := s.templates[j.templateID]
	if !ok {
		s.mu.Unlock()
		return
	}
	t.tx, t.cancel = nil, nil
	meta := map[string]any{"uri": j.dst.String()}
	var ev simcore.Event
	if f != nil {
		meta["reason"] = f.Error()
		s.logEvent(j.acct, j.who, true, ObjectImage, t.id, EventExportFailed, t.name, meta)
		ev = s.auditEvent(j.acct, j.who, ActionTemplateExport, simcore.OutcomeFailure, "image-template", t.id, t.name, 400, f.Error(), meta, nil)
	} else {
		s.logEvent(j.acct, j.who, true, ObjectImage, t.id, EventExportComplete, t.name, meta)
		ev = s.auditEvent(j.acct, j.who, ActionTemplateExport, simcore.OutcomeSuccess, "image-template", t.id, t.name, 200, "", meta, nil)
	}
	s.mu.Unlock()
	s.emit(ev)
}

// exportImage streams the template's source object to the destination.
func (s *Server) exportImage(ctx context.Context, j *exportJob) error {
	if len(j.seed) > 0 {
		return s.exportSeed(ctx, j)
	}
	if j.srcKey.Empty() {
		return failf(ReasonExportSourceGone, "the import's API key is no longer held")
	}
	srcTok, err := s.iamToken(ctx, j.srcKey)
	if err != nil {
		var f *importFailure
		if errors.As(err, &f) && f.reason == ReasonInvalidAPIKey {
			return failf(ReasonExportSourceGone, "the import's API key is no longer valid")
		}
		return err
	}
	defer srcTok.Zero()
	dstTok, err := s.iamToken(ctx, j.dstKey)
	if err != nil {
		return err
	}
	defer dstTok.Zero()
	src, releaseSrc, err := s.s3Client(srcTok, j.src.region)
	if err != nil {
		return err
	}
	defer releaseSrc()
	dst, releaseDst, err := s.s3Client(dstTok, j.dst.region)
	if err != nil {
		return err
	}
	defer releaseDst()
	in, err := src.GetObjectWithContext(ctx, &s3.GetObjectInput{Bucket: aws.String(j.src.bucket), Key: aws.String(j.src.key)})
	if err != nil {
		f := cosFailure(err, "source "+j.src.String())
		return failf(ReasonExportSourceGone, "%s", f.Error())
	}
	defer in.Body.Close()
	up := s3manager.NewUploaderWithClient(dst)
	_, err = up.UploadWithContext(ctx, &s3manager.UploadInput{
		Bucket: aws.String(j.dst.bucket), Key: aws.String(j.dst.key), Body: in.Body,
		ContentType: aws.String("application/octet-stream"),
	})
	if err != nil {
		return exportWriteFailure(err, j.dst.bucket, j.dst)
	}
	return nil
}

// exportWriteFailure is the failure of an export's upload to dst.
func exportWriteFailure(err error, bucket string, dst cosURI) error {
	var mf s3manager.MultiUploadFailure
	if errors.As(err, &mf) {
		err = mf.OrigErr()
	}
	if strings.Contains(err.Error(), "NoSuchBucket") {
		return failf(ReasonBucketNotFound, "bucket %s", bucket)
	}
	return cosFailure(err, "writing "+dst.String())
}
