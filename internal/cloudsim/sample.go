package cloudsim

import (
	"fmt"

	"github.com/e2eimage/e2eimage/internal/cloudsim/slsim"
	"github.com/e2eimage/e2eimage/internal/sampleimage"
)

// SampleTemplate is the name of the standard (unencrypted) image template
// every fresh simulated account holds: a capture of a server whose export
// (copyToIcos) writes SampleImage as a dynamic VHD, so that the flow from
// an existing template to an encrypted one runs on the simulator.
const SampleTemplate = "e2e-sample"

// SampleTemplateOS is the sample template's operating system reference
// code.
const SampleTemplateOS = "UBUNTU_22_64"

// SampleImage are the options of the sample template's disk
// (internal/sampleimage): sampleimage.Build(SampleImage) is the raw disk
// its export holds.
var SampleImage = sampleimage.Options{Size: 32 << 20, Seed: 20}

// seedSampleTemplate adds SampleTemplate to the account.
func (s *Sim) seedSampleTemplate() error {
	raw, err := sampleimage.Build(SampleImage)
	if err != nil {
		return err
	}
	s.sampleDisk = raw
	export, err := DynamicVHD(raw)
	if err != nil {
		return err
	}
	_, err = s.SoftLayer.SeedTemplate(s.Account.AccountID, slsim.SeedSpec{
		Name: SampleTemplate, Note: "a standard image template seeded by the simulator", OSCode: SampleTemplateOS,
		Disks: []slsim.SeedDisk{{Export: export, VirtualSize: int64(len(raw))}},
	})
	if err != nil {
		return fmt.Errorf("cloudsim: seeding the sample template: %w", err)
	}
	return nil
}

// SampleTemplateDisk returns the raw disk that SampleTemplate's export
// holds in this simulator (the sample image's file system carries its
// creation time, so another process's sampleimage.Build differs).
func (s *Sim) SampleTemplateDisk() []byte { return s.sampleDisk }
