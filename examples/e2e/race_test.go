package main

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/e2eimage/e2eimage/internal/cloudsim"
	"github.com/e2eimage/e2eimage/internal/faults"
)

// Two processes started together with one -state file: one runs, the
// other stops at once with exitLocked (or, when the first has already
// ended, resumes a finished run). 20 such races against one simulator,
// counted there: each name's image is written the same number of PUTs (parts),
// imported (createFromIcos) and ordered (Virtual_Guest createObject) at
// most once.
func TestTwoRunsOfOneStateNeverDuplicate(t *testing.T) {
	bin := builtE2E(t)
	s := prepareAsREADME(t, 65)
	counter := func(r faults.Rule) int { r.Kind = faults.Latency; return s.Faults.Add(r) }
	imports := counter(faults.Rule{Service: cloudsim.ServiceSoftLayer, PathContains: "/createFromIcos"})
	// createObject is a POST to the service itself (slsim's wire format).
	orders := counter(faults.Rule{Service: cloudsim.ServiceSoftLayer, Method: "POST", PathContains: "/SoftLayer_Virtual_Guest.json"})
	// The image's writes, per name: each PUT of the object or of a part.
	puts := map[string]int{}

	const races = 20
	var locked, ok, resumed int
	for i := range races {
		name := fmt.Sprintf("race-%02d", i)
		puts[name] = counter(faults.Rule{Service: cloudsim.ServiceS3, Method: "PUT", PathContains: "/" + name + ".vhd"})
		args := s.args(t, "-cos-instance", s.Account.COSInstanceCRN, "-name", name, "-hostname", name, "-state", filepath.Join(s.Dir, name+".state.json"), "-q")
		var wg sync.WaitGroup
		codes := make([]int, 2)
		outs := make([]string, 2)
		for j := range 2 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				cmd := exec.Command(bin, args...)
				cmd.Env = append(os.Environ(), "IBMCLOUD_API_KEY="+s.Account.APIKey)
				out, err := cmd.CombinedOutput()
				outs[j] = string(out)
				var ee *exec.ExitError
				if errors.As(err, &ee) {
					codes[j] = ee.ExitCode()
				} else if err != nil {
					codes[j] = -1
				}
			}()
		}
		wg.Wait()
		for j, c := range codes {
			switch {
			case c == exitOK && strings.Contains(outs[j], "upload        resumed"):
				resumed++
			case c == exitOK:
				ok++
			case c == exitLocked:
				require.Contains(t, outs[j], "another run holds the state file")
				locked++
			default:
				t.Fatalf("race %d, process %d: exit %d\n%s", i, j, c, outs[j])
			}
		}
	}
	nImports, nOrders := s.Faults.Hits(imports), s.Faults.Hits(orders)
	first := s.Faults.Hits(puts["race-00"])
	var nPuts int
	for name, id := range puts {
		nPuts += s.Faults.Hits(id)
		require.Equal(t, first, s.Faults.Hits(id), "PUTs of %s's image (race-00 had %d)", name, first)
	}
	t.Logf("%d races: %d runs did the work, %d stopped on the lock, %d resumed a finished run; at the simulator: %d image PUTs (%d per name), %d imports, %d orders",
		races, ok, locked, resumed, nPuts, first, nImports, nOrders)
	require.Equal(t, races, ok, "one run per race does the work")
	require.Equal(t, races, locked+resumed)
	require.NotZero(t, first, "the image PUTs are counted")
	require.Equal(t, races, nImports, "one import per name")
	require.Equal(t, races, nOrders, "one order per name")
	names := map[string]int{}
	for _, ti := range s.SoftLayer.Templates() {
		if ti.ParentID == 0 && strings.HasPrefix(ti.Name, "race-") {
			names[ti.Name]++
		}
	}
	require.Len(t, names, races)
	for n, c := range names {
		require.Equal(t, 1, c, "templates named %s", n)
	}
}
