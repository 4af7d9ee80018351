package secrets

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/e2eimage/e2eimage/audit"
	"github.com/e2eimage/e2eimage/classic"
	"github.com/e2eimage/e2eimage/e2e"
	"github.com/e2eimage/e2eimage/e2e/ibmcloud"
	"github.com/e2eimage/e2eimage/internal/cloudsim"
	"github.com/e2eimage/e2eimage/internal/testenv"
	"github.com/e2eimage/e2eimage/secret"
	"github.com/e2eimage/e2eimage/test/internal/leak"
)

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestRefusedCredentialsAreNotEchoed uses API keys the cloud refuses (the
// path where services and SDKs are most tempted to quote what they were
// sent) with every client, logging at the lowest level, and looks for the
// keys in the errors and the logs.
func TestRefusedCredentialsAreNotEchoed(t *testing.T) {
	sim, err := cloudsim.Start(context.Background(), cloudsim.Options{Seed: 41, ClockSpeed: 1000})
	if err != nil {
		t.Fatal(err)
	}
	defer sim.Close()
	b, _ := json.Marshal(sim.URLs)
	var ep ibmcloud.Endpoints
	if err := json.Unmarshal(b, &ep); err != nil {
		t.Fatal(err)
	}
	var logs lockedBuffer
	logger := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.Level(-8)}))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	wrongIBM := "WrongIBMCloudKey-" + "q8Zr3LmT0vX1yN5pB7cD9fH2jK4"
	wrongSL := "wrongclassickey0123456789abcdef0123456789abcdef0123456789abcdef0"
	sc := leak.NewScanner()
	sc.AddString("wrong IBM Cloud API key", wrongIBM)
	sc.AddString("wrong classic API key", wrongSL)
	var errs []string
	for _, cloud := range []ibmcloud.Config{
		{APIKey: secret.NewString(wrongIBM), RootKeyCRN: sim.Account.RootKeyCRN, Endpoints: ep, Logger: logger},
		{APIKey: secret.NewString(wrongIBM), RootKeyCRN: sim.Account.RootKeyCRN, Endpoints: ep, Logger: logger,
			Classic: classic.ClassicAPIKey("someuser", secret.NewString(wrongSL))},
	} {
		clients, err := ibmcloud.Connect(cloud)
		if err != nil {
			t.Fatal(err)
		}
		_, err = clients.Keys.Describe(ctx)
		errs = append(errs, fmt.Sprint(err))
		_, err = clients.COS.Stat(ctx, sim.Account.Bucket, "x")
		errs = append(errs, fmt.Sprint(err))
		_, err = clients.Classic.GetTemplate(ctx, 1)
		errs = append(errs, fmt.Sprint(err))
		_, err = clients.Auth.AccessToken(ctx)
		errs = append(errs, fmt.Sprint(err))
		_, err = clients.Audit.Collect(ctx, auditQuery())
		errs = append(errs, fmt.Sprint(err))
		rep, err := e2e.Preflight(ctx, e2e.Plan{
			Name: "x", OSCode: "UBUNTU_22_64", KeyService: clients.Keys, IAM: clients.IAM, COS: clients.COS,
			Bucket: sim.Account.Bucket, Classic: clients.Classic, ImportAPIKey: secret.NewString(wrongIBM),
		})
		errs = append(errs, fmt.Sprintf("%v %+v", err, err))
		if rep != nil {
			errs = append(errs, rep.String())
		}
		clients.Close()
	}
	// Clients that use http.DefaultTransport (classic and audit by
	// default) keep idle connections that Clients.Close cannot close
	// without closing every other user's: close them here for goleak.
	http.DefaultTransport.(*http.Transport).CloseIdleConnections()
	var found []string
	found = append(found, sc.Scan("logs", logs.String())...)
	refused := 0
	for i, e := range errs {
		if e != "<nil>" {
			refused++
		}
		found = append(found, sc.Scan(fmt.Sprintf("error %d", i), e)...)
	}
	for _, f := range found {
		t.Errorf("secret leaked: %s", f)
	}
	if refused < 8 {
		t.Errorf("only %d of %d calls failed with wrong keys: %q", refused, len(errs), errs)
	}
	t.Logf("HARDEN secrets scope=refused-credentials errors=%d log_bytes=%d found=%d", refused, len(logs.String()), len(found))
}

func auditQuery() audit.Query {
	return audit.Query{Start: time.Now().Add(-time.Hour), End: time.Now(), TemplateIDs: []int{1}}
}

// TestClientsCloseReleasesConnections: after Clients.Close no connection
// of the clients stays open, with or without a Logger (each open
// connection holds two goroutines and a socket). The simulator's servers
// count the connections from their connection events.
func TestClientsCloseReleasesConnections(t *testing.T) {
	conns := testenv.NewConns()
	sim, err := cloudsim.Start(context.Background(), cloudsim.Options{Seed: 42, ClockSpeed: 1000, ConnState: conns.Track})
	if err != nil {
		t.Fatal(err)
	}
	defer sim.Close()
	b, _ := json.Marshal(sim.URLs)
	var ep ibmcloud.Endpoints
	if err := json.Unmarshal(b, &ep); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for _, withLogger := range []bool{false, true} {
		cloud := ibmcloud.Config{APIKey: secret.NewString(sim.Account.APIKey), RootKeyCRN: sim.Account.RootKeyCRN, Endpoints: ep}
		if withLogger {
			cloud.Logger = slog.New(slog.NewTextHandler(io.Discard, &slog.HandlerOptions{Level: slog.LevelDebug}))
		}
		clients, err := ibmcloud.Connect(cloud)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = clients.Keys.Describe(ctx)
		_, _ = clients.COS.Stat(ctx, sim.Account.Bucket, "x")
		_, _ = clients.IAM.FindServiceID(ctx, "x")
		_, _ = clients.Audit.Collect(ctx, auditQuery())
		if len(conns.Open()) == 0 {
			t.Fatalf("with a Logger %v: no connection was open before Clients.Close: nothing was tested", withLogger)
		}
		clients.Close()
		http.DefaultTransport.(*http.Transport).CloseIdleConnections()
		conns.WaitFor(t, fmt.Sprintf("with a Logger %v, after Clients.Close", withLogger),
			func(open map[string]int) bool { return len(open) == 0 })
	}
}
