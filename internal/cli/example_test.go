package cli_test

import (
	"fmt"
	"os"

	"github.com/e2eimage/e2eimage/internal/cli"
)

// A command's run function: flags, parsing, then prefixed errors.
func Example() {
	run := func(args []string, lookup func(string) (string, bool)) int {
		getenv := cli.Getenv(lookup)
		fs := cli.NewFlagSet("demo", "Usage: demo [flags]\n\nFlags:\n", os.Stdout)
		var cf cli.CloudFlags
		cf.Register(fs, cli.Help{})
		if exit, ok := cli.Parse(fs, args); !ok {
			return exit
		}
		fail := cli.Failer{Prefix: "demo", W: os.Stdout}.Fail
		if _, err := cf.APIKey(getenv); err != nil {
			return fail(2, "%v", err)
		}
		fmt.Println("json:", cf.JSON)
		return 0
	}
	noEnv := func(string) (string, bool) { return "", false }
	withKey := func(k string) (string, bool) { return "secret", k == "IBMCLOUD_API_KEY" }
	fmt.Println("exit", run([]string{"-json"}, noEnv))
	fmt.Println("exit", run([]string{"-json"}, withKey))
	// Output:
	// demo: no API key: set IBMCLOUD_API_KEY or give -api-key-file
	// exit 2
	// json: true
	// exit 0
}
