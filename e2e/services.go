package e2e

import (
	"context"
	"io"
	"time"

	"github.com/e2eimage/e2eimage/audit"
	"github.com/e2eimage/e2eimage/classic"
	"github.com/e2eimage/e2eimage/cos"
)

// The facade names what it needs of each service as a small interface, in
// the way age names Identity and Recipient and restic its backend: the
// cloud packages' clients satisfy them (*cos.Client, *classic.Client,
// *audit.Reader, as e2e/ibmcloud asserts; the key service is
// kms.KeyService), and a test, a proxy
// or another store can stand in. e2e/ibmcloud.Connect makes the real ones.

// ObjectStore is the object storage the image is uploaded to (and a
// template exported to): *cos.Client.
type ObjectStore interface {
	// Region is the store's region, the import's cos://<region>/...
	Region() string
	CheckBucket(ctx context.Context, bucket, region string) (*cos.BucketInfo, error)
	Upload(ctx context.Context, bucket, key string, r io.Reader, size int64, opts ...cos.Option) (*cos.Result, error)
	Resume(ctx context.Context, st cos.UploadState, r io.Reader, size int64, opts ...cos.Option) (*cos.Result, error)
	Stat(ctx context.Context, bucket, key string) (*cos.ObjectInfo, error)
	List(ctx context.Context, bucket, prefix string) ([]cos.ListedObject, error)
	OpenObject(ctx context.Context, bucket, key string, opts ...cos.ObjectOption) (*cos.Object, error)
	Delete(ctx context.Context, bucket, key string) error
}

// ImageService is the classic infrastructure API that imports, exports and
// orders: *classic.Client.
type ImageService interface {
	OSReferenceCodes(ctx context.Context) (map[string]string, error)
	Import(ctx context.Context, req classic.ImportRequest) (*classic.Template, error)
	Export(ctx context.Context, templateID int, req classic.ExportRequest, opts ...classic.WaitOption) (*classic.ExportResult, error)
	GetTemplate(ctx context.Context, id int) (*classic.Template, error)
	GetTemplateContent(ctx context.Context, id int) (*classic.TemplateContent, error)
	FindTemplateByName(ctx context.Context, name string) (*classic.Template, error)
	WaitTemplate(ctx context.Context, id int, opts ...classic.WaitOption) (*classic.Template, error)
	Placement(ctx context.Context, spec classic.ServerSpec) (*classic.Placement, error)
	CreateServer(ctx context.Context, spec classic.ServerSpec, opts ...classic.WaitOption) (*classic.Server, error)
	FindServer(ctx context.Context, hostname, domain string) (*classic.Server, error)
	GetServer(ctx context.Context, id int) (*classic.Server, error)
	WaitServer(ctx context.Context, id int, opts ...classic.WaitOption) (*classic.Server, error)
}

// serviceClock is what an AuditSource may add: the services' own clock, which
// stamps the events (*audit.Reader has it). The audit window ends there when
// the local clock lags.
type serviceClock interface {
	ServiceNow(ctx context.Context) (time.Time, error)
}

// AuditSource reads the events that show what a run did: *audit.Reader.
// When it also has ServiceNow(ctx) (time.Time, error), as *audit.Reader does,
// the audit window ends at the services' clock rather than the local one.
type AuditSource interface {
	Collect(ctx context.Context, q audit.Query) ([]audit.Event, error)
	// Skipped says how many records the last Collect could not read, and
	// why.
	Skipped() (int, []audit.Skip)
}

// The audit reader carries the services' clock; a change that lost it would
// bring back windows that end before the events do.
var _ serviceClock = (*audit.Reader)(nil)
