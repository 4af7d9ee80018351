// Package nocore keeps key material out of core dumps: the example programs
// call Disable first thing in main, so that a crash while a DEK or an API key
// is in memory writes no core file that holds it.
//
// What this package does NOT do: it does not lock memory (mlock) or hide the
// process from a debugger of the same user, and it cannot stop a privileged
// user from raising the limit again or reading the process's memory.
package nocore

// Disable sets the process's core file size limit (soft and hard) to zero
// where the operating system has one. It returns an error only when the
// system refused; callers may go on, since this is a safeguard.
func Disable() error { return disable() }
