package cloudsim

import (
	"net/http"

	"github.com/e2eimage/e2eimage/internal/cloudsim/atsim"
)

// buildHandlers creates the HTTP handler of every service, in the order of
// URLs' fields (which fixes their ports when Options.Addr has one).
func (s *Sim) buildHandlers(opts Options) ([]namedHandler, error) {
	iam := s.IAM.Handler()
	return []namedHandler{
		{ServiceIAM, iam},
		{ServiceIAMIdentity, iam},
		{ServiceIAMPolicy, iam},
		{ServiceKMS, s.KMS.Handler()},
		{ServiceHPCS, s.HPCS.Handler()},
		{ServiceS3, notYet("Cloud Object Storage")},
		// TODO(cloudsim): serve slsim once internal/cloudsim/slsim exists.
		{ServiceSoftLayer, notYet("SoftLayer")},
		{ServiceActivityTracker, s.Events.Handler(atsim.HandlerConfig{
			AccountID: s.Account.AccountID, Identity: s.IAM, Authz: s.IAM,
		})},
	}, nil
}

func notYet(what string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "cloudsim: the simulated "+what+" is not wired in yet", http.StatusNotImplemented)
	})
}
