// Command tend-init is the init process tend runs as a container's PID 1:
// it reaps zombies, forwards signals to the container's command, exits with
// its status, and serves health probes on a unix socket. See package
// github.com/tendhq/tend/healthcheck/initprobe. Build it static
// (CGO_ENABLED=0): it runs inside containers of any image.
package main

import (
	"os"

	"github.com/tendhq/tend/healthcheck/initprobe"
)

func main() { os.Exit(initprobe.Main(os.Args[1:])) }
