// Package failpoint lets fault tests crash the manager at chosen points, to
// prove that no payment is lost or charged twice when a process dies there.
// Failpoints exist only for tests: the manager's --test-failpoints flag turns
// them on, and nothing else does.
package failpoint

import (
	"fmt"
	"os"
	"strings"
	"sync"
	"syscall"
)

// The failpoints the code has.
const (
	// AfterPSPCreate fires after the PSP accepted a create and before the
	// status records the provider payment id.
	AfterPSPCreate = "after-psp-create"
	// BeforeTerminalWrite fires before a status write that moves a payment
	// to a terminal phase, on the poll path and the callback path.
	BeforeTerminalWrite = "before-terminal-write"
)

var (
	mu      sync.RWMutex
	enabled = map[string]bool{}
)

// Enable turns on a comma-separated list of failpoints.
func Enable(list string) error {
	mu.Lock()
	defer mu.Unlock()
	for _, name := range strings.Split(list, ",") {
		switch name = strings.TrimSpace(name); name {
		case "":
		case AfterPSPCreate, BeforeTerminalWrite:
			enabled[name] = true
		default:
			return fmt.Errorf("unknown failpoint %q: expected %s or %s", name, AfterPSPCreate, BeforeTerminalWrite)
		}
	}
	return nil
}

// Crash kills the process with SIGKILL, as a crash would, when the failpoint
// is on. It prints the failpoint's name to stderr first so a test can tell a
// failpoint from another exit.
func Crash(name string) {
	mu.RLock()
	on := enabled[name]
	mu.RUnlock()
	if !on {
		return
	}
	fmt.Fprintf(os.Stderr, "failpoint %s: killing the process\n", name)
	_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
	select {} // SIGKILL cannot be caught; wait for it to land
}
