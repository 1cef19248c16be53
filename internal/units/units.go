// Package units formats sizes and durations for people.
package units

import (
	"fmt"
	"time"
)

// Bytes formats n with a binary unit: "512.0 MiB".
func Bytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}

// Rate formats n bytes moved in d as bytes per second: "88.3 MiB/s".
func Rate(n int64, d time.Duration) string {
	return Bytes(int64(float64(n)/max(d.Seconds(), 0.001))) + "/s"
}

// Duration rounds d for display: milliseconds below a second, else tenths.
func Duration(d time.Duration) string {
	if d < time.Second {
		return d.Round(time.Millisecond).String()
	}
	return d.Round(100 * time.Millisecond).String()
}
