//go:build !linux

package initprobe

import (
	"fmt"
	"os"
)

// Main needs Linux (PID namespaces, subreapers, /proc).
func Main(args []string) int {
	fmt.Fprintln(os.Stderr, "tend-init: only supported on linux")
	return 127
}
