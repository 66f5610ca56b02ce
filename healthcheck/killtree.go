package healthcheck

import "github.com/tendhq/tend/internal/proctree"

// KillTree kills the host process pid and all its descendants, even while
// they fork: it stops (SIGSTOP) each process top-down so none can fork any
// more, rescans until nothing new turns up, then SIGKILLs them all. When pid
// leads its process group or session, members of that group or session are
// included, which catches double-forked orphans. Processes already gone are
// not an error; pid <= 1 is an errdefs.ErrInvalidArgument. The caller still
// reaps its own children. Linux only (errdefs.ErrNotImplemented elsewhere).
func KillTree(pid int) error { return proctree.KillTree(pid) }
