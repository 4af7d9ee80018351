// Package units formats sizes for people: the one rendering of byte counts
// shared by the library's messages and the example programs.
package units

import "fmt"

// Bytes renders n as "512 B", "8.0 MiB", "1.5 GiB" (binary prefixes).
func Bytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit && exp < 5; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}
