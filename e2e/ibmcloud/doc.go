// Package ibmcloud builds the real IBM Cloud clients that package e2e runs
// its flow with, and checks an account without changing it.
//
// Connect makes, from one API key, a root key CRN and (optionally)
// Endpoints, the IAM, key service, COS, classic infrastructure and audit
// clients; a Plan of package e2e takes them:
//
//	clients, err := ibmcloud.Connect(ibmcloud.Config{APIKey: key, RootKeyCRN: crn})
//	...
//	res, err := e2e.Run(ctx, e2e.Plan{KeyService: clients.Keys, COS: clients.COS, Classic: clients.Classic, ...})
//
// Clients.ProveImportKey is what e2e.Plan.ProveImportKey wants. Clients.Check
// is the live check: read-only calls to every service, each reported, with
// a Recorder under them that refuses any request that is not a read.
// Endpoints is what examples/cloudsim prints, so a simulator's URLs load
// with LoadEndpoints.
//
// # What this package does not do
//
//   - It runs no flow step; that is package e2e.
//   - It makes no request in Connect: a wrong key or an unreachable endpoint
//     shows on the first call.
package ibmcloud
