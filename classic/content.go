package classic

import (
	"context"
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"

	"github.com/softlayer/softlayer-go/datatypes"
	"github.com/softlayer/softlayer-go/services"
	"github.com/softlayer/softlayer-go/session"
)

// TemplateContent is what an image template holds, as an export or a
// re-import needs to know it: its disks with their sizes and operating
// system, and whether they are encrypted.
type TemplateContent struct {
	Template
	// Encrypted is isEncrypted's answer (SLDN
	// SoftLayer_Virtual_Guest_Block_Device_Template_Group::isEncrypted).
	Encrypted bool
	// Disks are the block devices of the template's first copy that holds
	// any, in device order; Disks[0] is the boot disk. An export writes one
	// object per disk, in this order (<name>-0.vhd is the boot disk).
	Disks []TemplateDisk
	// OSCode is the boot disk's operating system reference code, "" when
	// the API names none.
	OSCode string
}

// TemplateDisk is one block device of an image template.
type TemplateDisk struct {
	// Device is the block device's number (0 for the boot disk).
	Device int
	// Capacity is the disk's size in bytes, from its disk image's capacity
	// and units (GB means GiB, as the classic API counts), or from the
	// block device's diskSpace when the image gives none; 0 when unknown.
	Capacity int64
	// Name is the disk image's name.
	Name string
	// OSCode is the reference code of the operating system on the disk,
	// "" for a data disk.
	OSCode string
}

// contentMask adds to templateMask what TemplateContent reads from each
// copy's block devices: the device number, the space, and the disk image
// with its capacity and software (softlayer-python's image detail mask
// reads children[blockDevices[diskImage[capacity,name,units,
// softwareReferences[softwareDescription]],diskSpace]]).
const contentMask = "mask[id,globalIdentifier,name,note,createDate,statusId,status,transactionId," +
	"transaction[transactionStatus,transactionGroup],blockDevices[id,device,diskSpace,units,diskImage[capacity,units,name," +
	"softwareReferences[softwareDescription[referenceCode]]]],blockDevicesDiskSpaceTotal,datacenters[id,name]," +
	"children[id,parentId,statusId,status,transactionId,transaction[transactionStatus,transactionGroup],blockDevices[id,device," +
	"diskSpace,units,diskImage[capacity,units,name,softwareReferences[softwareDescription[referenceCode]]]]," +
	"blockDevicesDiskSpaceTotal,datacenter[id,name]]]"

// GetTemplateContent reads an image template with its disks and whether it
// is encrypted (two read-only calls: getObject and isEncrypted).
func (c *Client) GetTemplateContent(ctx context.Context, id int) (*TemplateContent, error) {
	var g datatypes.Virtual_Guest_Block_Device_Template_Group
	err := c.read(ctx, "SoftLayer_Virtual_Guest_Block_Device_Template_Group::getObject", func(s *session.Session) (err error) {
		g, err = services.GetVirtualGuestBlockDeviceTemplateGroupService(s).Id(id).Mask(contentMask).GetObject()
		return err
	})
	if err != nil {
		return nil, err
	}
	var enc bool
	err = c.read(ctx, "SoftLayer_Virtual_Guest_Block_Device_Template_Group::isEncrypted", func(s *session.Session) (err error) {
		enc, err = services.GetVirtualGuestBlockDeviceTemplateGroupService(s).Id(id).IsEncrypted()
		return err
	})
	if err != nil {
		return nil, err
	}
	tc := &TemplateContent{Template: templateFrom(g), Encrypted: enc}
	devs := g.BlockDevices
	for i := range g.Children {
		if len(devs) > 0 {
			break
		}
		devs = g.Children[i].BlockDevices
	}
	for _, d := range devs {
		tc.Disks = append(tc.Disks, diskFrom(d))
	}
	sort.SliceStable(tc.Disks, func(i, j int) bool { return tc.Disks[i].Device < tc.Disks[j].Device })
	if len(tc.Disks) > 0 {
		tc.OSCode = tc.Disks[0].OSCode
	}
	return tc, nil
}

func diskFrom(d datatypes.Virtual_Guest_Block_Device_Template) TemplateDisk {
	td := TemplateDisk{Device: -1}
	if n, err := strconv.Atoi(strings.TrimSpace(str(d.Device))); err == nil {
		td.Device = n
	}
	if img := d.DiskImage; img != nil {
		td.Name = str(img.Name)
		if img.Capacity != nil {
			td.Capacity = capacityBytes(float64(*img.Capacity), str(img.Units))
		}
		for _, sr := range img.SoftwareReferences {
			if sd := sr.SoftwareDescription; sd != nil && str(sd.ReferenceCode) != "" {
				td.OSCode = str(sd.ReferenceCode)
				break
			}
		}
	}
	if td.Capacity == 0 && d.DiskSpace != nil {
		td.Capacity = capacityBytes(float64(*d.DiskSpace), str(d.Units))
	}
	return td
}

// capacityBytes converts a size in the classic API's units (GB, MB, ...,
// counted in powers of 1024 as the API's disk sizes are) to bytes; 0 for
// units it does not know.
func capacityBytes(v float64, units string) int64 {
	shift := map[string]uint{"B": 0, "KB": 10, "MB": 20, "GB": 30, "TB": 40}[strings.ToUpper(strings.TrimSpace(units))]
	if v <= 0 || (shift == 0 && !strings.EqualFold(strings.TrimSpace(units), "B")) {
		return 0
	}
	b := v * float64(uint64(1)<<shift)
	if b > math.MaxInt64/2 {
		return 0
	}
	return int64(b)
}

// String summarises the disks for messages.
func (tc *TemplateContent) String() string {
	parts := make([]string, 0, len(tc.Disks))
	for _, d := range tc.Disks {
		s := fmt.Sprintf("disk %d: %d GiB", d.Device, d.Capacity>>30)
		if d.OSCode != "" {
			s += " " + d.OSCode
		}
		parts = append(parts, s)
	}
	return strings.Join(parts, "; ")
}
