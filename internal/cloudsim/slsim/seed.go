package slsim

import (
	"bytes"
	"context"
	"errors"
	"fmt"

	"github.com/IBM/ibm-cos-sdk-go/aws"
	"github.com/IBM/ibm-cos-sdk-go/service/s3/s3manager"
	"github.com/softlayer/softlayer-go/datatypes"
)

// SeedDisk is one block device of a seeded template: the bytes copyToIcos
// writes for it and the disk's size.
type SeedDisk struct {
	// Export is the object an export writes for this block device. IBM
	// documents exported objects as .vhd files but not which kind of VHD;
	// the simulator writes these bytes as given (cloudsim seeds a dynamic
	// VHD: invented).
	Export []byte
	// VirtualSize is the disk's size in bytes, shown as the block device's
	// capacity.
	VirtualSize int64
}

// SeedSpec describes an image template that exists in an account before
// any request: a standard (unencrypted) template, as a user's own capture
// would be, for exports and the template-to-encrypted-template flow.
type SeedSpec struct {
	Name, Note string
	// OSCode is the operating system reference code of the boot disk.
	OSCode string
	// Datacenter holds the template's one copy. Default: the import data
	// center of the simulator's region.
	Datacenter string
	// Disks are the template's block devices, the boot disk first.
	Disks []SeedDisk
	// Encrypted marks the template encrypted (an export then still writes
	// Disks as given).
	Encrypted bool
}

type seedDisk struct {
	export []byte
	size   int64
}

// SeedTemplate adds an Active template with one ready copy to the classic
// account linked to the IBM Cloud account ibmAccount, and returns it.
func (s *Server) SeedTemplate(ibmAccount string, spec SeedSpec) (TemplateInfo, error) {
	if spec.Name == "" || len(spec.Disks) == 0 {
		return TemplateInfo{}, errors.New("slsim: a seeded template needs a name and at least one disk")
	}
	dc := spec.Datacenter
	if dc == "" {
		dc = s.cfg.ImportDatacenters[s.cfg.Region]
	}
	if s.location(dc) == nil {
		return TemplateInfo{}, fmt.Errorf("slsim: unknown data center %q", dc)
	}
	disks := make([]seedDisk, len(spec.Disks))
	for i, d := range spec.Disks {
		disks[i] = seedDisk{export: bytes.Clone(d.Export), size: d.VirtualSize}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	acct := s.accountFor(ibmAccount)
	s.ids.template++
	now := s.clock.Now()
	t := &template{
		id: s.ids.template, guid: newGUID(), acct: acct, name: spec.Name, note: spec.Note, created: now,
		status: TemplateStatusActive, osCode: spec.OSCode, encrypted: spec.Encrypted,
		virtualSize: disks[0].size, seed: disks,
	}
	ch := s.newChild(t, dc)
	ch.ready, ch.seed = true, disks
	s.ids.blockDevice++
	t.blockDevID = s.ids.blockDevice
	t.datacenters = []string{dc}
	s.templates[t.id] = t
	s.templates[ch.id] = ch
	return TemplateInfo{ID: t.id, GlobalIdentifier: t.guid, Name: t.name, Account: ibmAccount, Status: t.status,
		Encrypted: t.encrypted, OSReferenceCode: t.osCode, VirtualSize: t.virtualSize}, nil
}

// seedBlockDevices are the block devices of a seeded template (owner is the
// group whose ids they carry). Device numbers 0, 1, ... in export order are
// invented; the disk image's capacity in GB and its software reference
// follow the fields softlayer-python's image detail reads.
func seedBlockDevices(owner *template, osCode string) []datatypes.Virtual_Guest_Block_Device_Template {
	out := make([]datatypes.Virtual_Guest_Block_Device_Template, 0, len(owner.seed))
	for i, d := range owner.seed {
		gb := datatypes.Float64(float64((d.size + (1<<30 - 1)) >> 30))
		img := &datatypes.Virtual_Disk_Image{
			Capacity: ptr(int(gb)), Units: ptr("GB"), Name: ptr(fmt.Sprintf("%s disk %d", owner.name, i)),
		}
		if i == 0 && osCode != "" {
			img.SoftwareReferences = []datatypes.Virtual_Disk_Image_Software{{
				SoftwareDescription: &datatypes.Software_Description{ReferenceCode: ptr(osCode)},
			}}
		}
		out = append(out, datatypes.Virtual_Guest_Block_Device_Template{
			Id: ptr(owner.blockDevID*10 + i), Device: ptr(fmt.Sprint(i)), DiskSpace: &gb, Units: ptr("GB"),
			GroupId: ptr(owner.id), DiskImage: img,
		})
	}
	return out
}

// exportSeed writes a seeded template's disks, one object per block device.
func (s *Server) exportSeed(ctx context.Context, j *exportJob) error {
	dstTok, err := s.iamToken(ctx, j.dstKey)
	if err != nil {
		return err
	}
	defer dstTok.Zero()
	dst, release, err := s.s3Client(dstTok, j.dst.region)
	if err != nil {
		return err
	}
	defer release()
	up := s3manager.NewUploaderWithClient(dst)
	for n, d := range j.seed {
		key := ExportObjectName(j.dstName, n)
		_, err := up.UploadWithContext(ctx, &s3manager.UploadInput{
			Bucket: aws.String(j.dst.bucket), Key: aws.String(key), Body: bytes.NewReader(d.export),
			ContentType: aws.String("application/octet-stream"),
		})
		if err != nil {
			return exportWriteFailure(err, j.dst.bucket, cosURI{region: j.dst.region, bucket: j.dst.bucket, key: key})
		}
	}
	return nil
}
