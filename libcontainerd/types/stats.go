// Package types holds the data of package libcontainerd that front ends
// share with the engine: a task's resource usage (Stats) and Docker's
// exit codes for a command that cannot be run. It imports no containerd
// client, gRPC or protobuf code, so that a client (the engine CLI) can use
// it without paying for them; package libcontainerd aliases every name
// here.
package types

import "time"

// Stats is the resource usage of a task, read from its cgroup. The same
// fields are filled from cgroup v1 and v2; a field the kernel does not report
// stays zero.
type Stats struct {
	Read   time.Time   `json:"read"`
	CPU    CPUStats    `json:"cpu"`
	Memory MemoryStats `json:"memory"`
	Pids   PidsStats   `json:"pids"`
	Blkio  BlkioStats  `json:"blkio"`
	// Networks are the counters of the task's network interfaces but lo,
	// by name. The cgroup has none: the engine reads them from the task's
	// network namespace; empty in the host's namespace.
	Networks map[string]NetworkStats `json:"networks,omitempty"`
}

// NetworkStats are one interface's counters, as /proc/net/dev gives them.
type NetworkStats struct {
	RxBytes   uint64 `json:"rx_bytes"`
	RxPackets uint64 `json:"rx_packets"`
	RxErrors  uint64 `json:"rx_errors"`
	RxDropped uint64 `json:"rx_dropped"`
	TxBytes   uint64 `json:"tx_bytes"`
	TxPackets uint64 `json:"tx_packets"`
	TxErrors  uint64 `json:"tx_errors"`
	TxDropped uint64 `json:"tx_dropped"`
}

// CPUStats is cumulative CPU time.
type CPUStats struct {
	UsageNanos       uint64 `json:"usage_nanos"`
	UserNanos        uint64 `json:"user_nanos"`
	SystemNanos      uint64 `json:"system_nanos"`
	Periods          uint64 `json:"periods"`
	ThrottledPeriods uint64 `json:"throttled_periods"`
	ThrottledNanos   uint64 `json:"throttled_nanos"`
}

// MemoryStats is memory use in bytes. Limit is the cgroup's limit (a huge
// number when unlimited).
type MemoryStats struct {
	Usage    uint64 `json:"usage"`
	MaxUsage uint64 `json:"max_usage"`
	Limit    uint64 `json:"limit"`
	Cache    uint64 `json:"cache"`
	RSS      uint64 `json:"rss"`
	OOMKills uint64 `json:"oom_kills"`
}

// PidsStats counts tasks in the cgroup.
type PidsStats struct {
	Current uint64 `json:"current"`
	Limit   uint64 `json:"limit"`
}

// BlkioStats is block I/O in bytes.
type BlkioStats struct {
	ReadBytes  uint64 `json:"read_bytes"`
	WriteBytes uint64 `json:"write_bytes"`
}
