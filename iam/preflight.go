package iam

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"text/tabwriter"
)

// CheckResult is the outcome of one preflight check.
type CheckResult struct {
	// Name says what was checked, e.g. "authorization server-protect -> kms".
	Name string
	// OK is true when the preparation step is in place.
	OK bool
	// Detail says what was found.
	Detail string
	// Fix says what to do when OK is false.
	Fix string
	// Err is the error behind a failure, when there is one (for errors.Is:
	// kms.ErrKeyNotActive, ErrForbidden, ...).
	Err error
}

// Check is one preflight check. Run must honour ctx and report problems in
// the result rather than panic.
type Check struct {
	Name string
	Run  func(ctx context.Context) CheckResult
}

// FuncCheck makes a Check from a function that returns nil when the step is
// in place, or an error saying what is wrong; fix says what to do then. It
// suits checks supplied by other packages, such as the bucket's location.
func FuncCheck(name string, fn func(ctx context.Context) (detail string, err error), fix string) Check {
	return Check{Name: name, Run: func(ctx context.Context) CheckResult {
		detail, err := fn(ctx)
		if err != nil {
			if detail == "" {
				detail = err.Error()
			}
			return CheckResult{Name: name, Detail: detail, Fix: fix, Err: err}
		}
		return CheckResult{Name: name, OK: true, Detail: detail}
	}}
}

// Report is the outcome of Preflight, one result per check in order.
type Report struct {
	Results []CheckResult
}

// OK reports whether every check passed.
func (r *Report) OK() bool { return len(r.Failed()) == 0 }

// Failed returns the results that did not pass.
func (r *Report) Failed() []CheckResult {
	var out []CheckResult
	for _, c := range r.Results {
		if !c.OK {
			out = append(out, c)
		}
	}
	return out
}

// Result returns the result of the check called name.
func (r *Report) Result(name string) (CheckResult, bool) {
	for _, c := range r.Results {
		if c.Name == name {
			return c, true
		}
	}
	return CheckResult{}, false
}

// ErrPreflight is matched by the error of a report with failed checks.
var ErrPreflight = errors.New("iam: preflight checks failed")

// Err returns nil when every check passed, or an error naming the failed
// checks that matches ErrPreflight and each failure's own error.
func (r *Report) Err() error {
	failed := r.Failed()
	if len(failed) == 0 {
		return nil
	}
	names := make([]string, len(failed))
	errs := []error{ErrPreflight}
	for i, f := range failed {
		names[i] = f.Name
		if f.Err != nil {
			errs = append(errs, f.Err)
		}
	}
	return &preflightError{msg: fmt.Sprintf("iam: preflight: %d of %d checks failed: %s", len(failed), len(r.Results), strings.Join(names, "; ")), errs: errs}
}

type preflightError struct {
	msg  string
	errs []error
}

func (e *preflightError) Error() string   { return e.msg }
func (e *preflightError) Unwrap() []error { return e.errs }

// String formats the report as a table: status, check, detail, and the fix
// for failures.
func (r *Report) String() string {
	var b strings.Builder
	tw := tabwriter.NewWriter(&b, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "STATUS\tCHECK\tDETAIL")
	for _, c := range r.Results {
		status := "ok"
		if !c.OK {
			status = "MISSING"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\n", status, c.Name, oneLine(c.Detail))
		if !c.OK && c.Fix != "" {
			fmt.Fprintf(tw, "\t\tfix: %s\n", oneLine(c.Fix))
		}
	}
	_ = tw.Flush()
	return b.String()
}

func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }

// Preflight runs every check in order and reports all of them; a failed
// check does not stop the others. Once ctx is done, the remaining checks
// are reported as not run.
func Preflight(ctx context.Context, checks ...Check) *Report {
	r := &Report{Results: make([]CheckResult, 0, len(checks))}
	for _, c := range checks {
		if err := ctx.Err(); err != nil {
			r.Results = append(r.Results, CheckResult{Name: c.Name, Detail: "not run: " + err.Error(), Fix: "run the preflight again", Err: err})
			continue
		}
		res := c.Run(ctx)
		if res.Name == "" {
			res.Name = c.Name
		}
		r.Results = append(r.Results, res)
	}
	return r
}

// KeyCheck turns kms.CheckKey (or any function of that shape) into a
// Check named "root key".
func KeyCheck(check func(ctx context.Context) (detail, fix string, err error)) Check {
	const name = "root key"
	return Check{Name: name, Run: func(ctx context.Context) CheckResult {
		detail, fix, err := check(ctx)
		if err != nil {
			return CheckResult{Name: name, Detail: detail, Fix: fix, Err: err}
		}
		return CheckResult{Name: name, OK: true, Detail: detail}
	}}
}

// AuthorizationCheck checks that an authorization policy grants a.
func (c *Client) AuthorizationCheck(a Authorization) Check {
	name := "authorization " + a.Source + " -> " + a.Target
	return Check{Name: name, Run: func(ctx context.Context) CheckResult {
		id, err := c.FindAuthorization(ctx, a)
		switch {
		case err != nil:
			return CheckResult{Name: name, Detail: err.Error(), Err: err,
				Fix: "check that the credentials may read IAM policies in account " + c.accountID}
		case id == "":
			return CheckResult{Name: name, Detail: "no authorization grants " + a.String(),
				Fix: fmt.Sprintf("create it: ibmcloud iam authorization-policy-create %s %s %s --target-service-instance-id %s (or iam.Client.Setup)",
					a.Source, a.Target, a.role().Name(), a.TargetInstance)}
		}
		return CheckResult{Name: name, OK: true, Detail: "policy " + id + " grants " + a.String()}
	}}
}

// ServiceIDCheck checks that the service ID called name exists and has at
// least one API key.
func (c *Client) ServiceIDCheck(name string) Check {
	cname := "service ID " + name
	return Check{Name: cname, Run: func(ctx context.Context) CheckResult {
		sid, err := c.FindServiceID(ctx, name)
		if err != nil {
			return CheckResult{Name: cname, Detail: err.Error(), Err: err, Fix: "check that the credentials may read service IDs"}
		}
		if sid == nil {
			return CheckResult{Name: cname, Detail: "no service ID is called " + name,
				Fix: "create it with an API key (iam.Client.Setup, or ibmcloud iam service-id-create " + name + ")"}
		}
		keys, err := c.APIKeys(ctx, sid.IAMID)
		if err != nil {
			return CheckResult{Name: cname, Detail: err.Error(), Err: err, Fix: "check that the credentials may read API keys"}
		}
		if len(keys) == 0 {
			return CheckResult{Name: cname, Detail: "service ID " + sid.ID + " has no API key",
				Fix: "create one (ibmcloud iam service-api-key-create KEYNAME " + name + ") and keep its value"}
		}
		return CheckResult{Name: cname, OK: true, Detail: fmt.Sprintf("%s with %d API key(s)", sid.ID, len(keys))}
	}}
}

// AccessPolicyCheck checks that the service ID called serviceIDName holds
// the access policy made by policy(iamID).
func (c *Client) AccessPolicyCheck(serviceIDName, service string, policy func(iamID string) AccessPolicy) Check {
	name := "access policy " + serviceIDName + " -> " + service
	return Check{Name: name, Run: func(ctx context.Context) CheckResult {
		sid, err := c.FindServiceID(ctx, serviceIDName)
		if err != nil {
			return CheckResult{Name: name, Detail: err.Error(), Err: err, Fix: "check that the credentials may read service IDs"}
		}
		if sid == nil {
			return CheckResult{Name: name, Detail: "service ID " + serviceIDName + " does not exist, so it holds no policy",
				Fix: "create the service ID and its policies (iam.Client.Setup)"}
		}
		p := policy(sid.IAMID)
		id, err := c.FindAccessPolicy(ctx, p)
		switch {
		case err != nil:
			return CheckResult{Name: name, Detail: err.Error(), Err: err, Fix: "check that the credentials may read IAM policies"}
		case id == "":
			return CheckResult{Name: name, Detail: "no policy grants " + p.String(),
				Fix: fmt.Sprintf("assign it: ibmcloud iam service-policy-create %s --roles %s --service-name %s --service-instance %s (or iam.Client.Setup)",
					serviceIDName, p.Role.Name(), p.Service, p.Instance)}
		}
		return CheckResult{Name: name, OK: true, Detail: "policy " + id + " grants " + p.String()}
	}}
}

// Checks returns the preflight checks of a plan, in the order the flow
// needs them: the root key (through ks), the Cloud Block Storage
// authorization, the COS authorization (if planned), then the service ID
// and its two access policies (if planned). Callers append checks this
// package cannot make, such as the bucket's location.
func (c *Client) Checks(plan Plan, first ...Check) []Check {
	checks := append(append([]Check(nil), first...), c.AuthorizationCheck(BlockStorageAuthorization(plan.Key)))
	if plan.COSKeyAuthorization {
		checks = append(checks, c.AuthorizationCheck(COSAuthorization(plan.Key)))
	}
	if plan.ServiceID.Name != "" {
		checks = append(checks,
			c.ServiceIDCheck(plan.ServiceID.Name),
			c.AccessPolicyCheck(plan.ServiceID.Name, ServiceCOS, plan.COSPolicy),
			c.AccessPolicyCheck(plan.ServiceID.Name, plan.Key.Service.String(), plan.KeyPolicy),
		)
	}
	return checks
}
