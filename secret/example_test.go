package secret_test

import (
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"log"
	"log/slog"
	"os"

	"github.com/e2eimage/e2eimage/secret"
)

// An API key held as a string (from an environment variable, a file, a
// vault) goes to the SDK's clients as a *secret.String, which never prints.
func ExampleNewString() {
	apiKey := secret.NewString("an-api-key-from-the-environment")
	defer apiKey.Zero()

	fmt.Println(apiKey)
	fmt.Printf("%q %#v %x\n", apiKey, apiKey, apiKey)
	b, err := json.Marshal(map[string]any{"api_key": apiKey})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(string(b))
	logger := slog.New(slog.NewTextHandler(os.Stdout, &slog.HandlerOptions{
		ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
			if a.Key == slog.TimeKey {
				return slog.Attr{} // keep the output stable
			}
			return a
		},
	}))
	logger.Info("authenticating", "api_key", apiKey)

	// Reveal is the one way out, to hand the value to an SDK.
	fmt.Println(len(apiKey.Reveal()), "characters held")
	// Output:
	// [REDACTED]
	// [REDACTED] [REDACTED] [REDACTED]
	// {"api_key":"[REDACTED]"}
	// level=INFO msg=authenticating api_key=[REDACTED]
	// 31 characters held
}

// A DEK held as bytes is copied into memory of its own (locked in RAM where
// the system allows), so the caller can clear its slice at once.
func ExampleNewDEK() {
	raw := make([]byte, secret.DEK512) // e.g. unwrapped by a key service
	if _, err := rand.Read(raw); err != nil {
		log.Fatal(err)
	}
	dek, err := secret.NewDEK(raw)
	clear(raw)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(dek.Len(), "bytes:", dek)
	dek.Zero()
	fmt.Println("after Zero:", dek.Len(), "bytes")

	_, err = secret.NewDEK(make([]byte, 48))
	fmt.Println(errors.Is(err, secret.ErrDEKSize), err)
	// Output:
	// 64 bytes: [REDACTED]
	// after Zero: 0 bytes
	// true secret: a DEK must be 32 bytes (AES-128-XTS) or 64 bytes (AES-256-XTS) (got 48 bytes)
}
