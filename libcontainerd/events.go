package libcontainerd

import (
	"context"
	"fmt"
	"strings"
	"time"

	apievents "github.com/containerd/containerd/api/events"
	containerd "github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/core/events"
	"github.com/containerd/errdefs"
	"github.com/containerd/errdefs/pkg/errgrpc"
	"github.com/containerd/typeurl/v2"
	"google.golang.org/protobuf/types/known/emptypb"

	"github.com/tendhq/tend/libcontainerd/internal/serving"
)

const (
	// syncTopic carries the marker event the client publishes to itself to
	// learn that containerd has registered its subscription.
	syncTopic = "/tend/subscribed"
	// reconnect backoff while containerd is not serving.
	minBackoff = 100 * time.Millisecond
	maxBackoff = 2 * time.Second
	// confirmTimeout bounds the wait for the subscription marker.
	confirmTimeout = 5 * time.Second
	// unknownExitReason is the Reason of an exit whose status is lost.
	unknownExitReason = "containerd lost the task while the stream was down; exit status unknown"
)

// processEventStream owns the containerd event subscription. When the stream
// breaks it waits for containerd with capped backoff, subscribes again and
// reconciles, so that no exit is lost. It runs until Close.
func (c *client) processEventStream(subscribed chan<- struct{}) {
	defer c.wg.Done()
	filters := []string{
		fmt.Sprintf(`namespace==%s,topic~="|^/tasks/|"`, c.ns),
		fmt.Sprintf(`namespace==%s,topic~="|^%s/|"`, c.ns, syncTopic),
	}
	for gen := 0; ; gen++ {
		genCtx, cancelGen := context.WithCancel(c.ctx)
		c.mu.Lock()
		c.genCtx = genCtx
		c.mu.Unlock()

		err := c.consume(genCtx, filters, gen > 0, subscribed)
		cancelGen() // stops this generation's exit waiters
		subscribed = nil
		if c.ctx.Err() != nil {
			return
		}
		c.log.WithError(err).Warn("containerd event stream broke; waiting for containerd to resubscribe")
		if !c.waitServing() {
			return
		}
	}
}

// consume reads one subscription until it fails or the client closes. Once
// containerd confirms the subscription, it reconciles (when asked) and
// closes subscribed.
func (c *client) consume(ctx context.Context, filters []string, reconcile bool, subscribed chan<- struct{}) error {
	evCh, errCh := c.cc.Subscribe(ctx, filters...)
	// containerd gives no acknowledgement of a subscription, so the client
	// publishes a marker to itself: once it comes back, every later event
	// reaches this stream, and a reconcile from then on misses nothing.
	topic := fmt.Sprintf("%s/%x-%d", syncTopic, fmt.Sprintf("%p", c), time.Now().UnixNano())
	publish := func() {
		if err := c.cc.EventService().Publish(ctx, topic, &emptypb.Empty{}); err != nil {
			c.log.WithError(err).Debug("publish subscription marker")
		}
	}
	confirm := func() {
		if reconcile {
			c.reconcile(ctx)
			reconcile = false
		}
		if subscribed != nil {
			close(subscribed)
			subscribed = nil
		}
	}
	retry := time.NewTicker(minBackoff)
	defer retry.Stop()
	giveUp := time.NewTimer(confirmTimeout)
	defer giveUp.Stop()
	publish()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case err := <-errCh:
			if err == nil {
				err = fmt.Errorf("event stream closed by containerd: %w", errdefs.ErrUnavailable)
			}
			return err
		case <-retry.C:
			publish()
		case <-giveUp.C:
			c.log.Warn("containerd did not echo the subscription marker; reconciling without it")
			retry.Stop()
			confirm()
		case ev := <-evCh:
			if ev == nil {
				continue
			}
			if strings.HasPrefix(ev.Topic, syncTopic+"/") {
				if ev.Topic == topic {
					retry.Stop()
					giveUp.Stop()
					confirm()
				}
				continue
			}
			c.handleEvent(ev)
		}
	}
}

// waitServing waits with capped backoff until containerd answers. It reports
// false when the client closed first.
func (c *client) waitServing() bool {
	// A pause first: a stream that broke at once must not spin.
	b := serving.Backoff{Min: minBackoff, Max: maxBackoff, Delay: true}
	return serving.Wait(c.ctx, b, func(ctx context.Context) bool {
		ctx, cancel := context.WithTimeout(ctx, time.Second)
		defer cancel()
		ok, _ := c.cc.IsServing(ctx)
		return ok
	}) == nil
}

// reconcile runs after a resubscription: every process whose exit the
// Backend has not seen gets a waiter, which reports its exit whether it
// happened while the stream was down or happens later.
func (c *client) reconcile(ctx context.Context) {
	type live struct {
		ctrID string
		ct    *container
		p     process
	}
	var todo []live
	c.mu.Lock()
	for id, ct := range c.containers {
		for _, p := range ct.procs {
			if p.live && p.proc != nil {
				todo = append(todo, live{id, ct, *p})
			}
		}
	}
	c.mu.Unlock()
	c.log.WithField("processes", len(todo)).Info("reconciling after containerd reconnect")
	for _, l := range todo {
		c.waitExit(ctx, l.ctrID, l.p.id, l.p.proc, l.p.pid)
	}
}

// waitExit starts a goroutine that waits for the process to exit and
// delivers the exit. It ends with ctx (the stream generation): when the
// stream breaks the next reconcile waits again.
func (c *client) waitExit(ctx context.Context, ctrID, processID string, p containerd.Process, pid uint32) {
	if ctx == nil {
		return // the event stream has not started yet (only inside New)
	}
	c.spawn(ctx, func() {
		ch, err := p.Wait(ctx)
		if err != nil {
			c.waitFailed(ctx, err, ctrID, processID, pid)
			return
		}
		select {
		case <-ctx.Done():
		case st := <-ch:
			if err := st.Error(); err != nil {
				c.waitFailed(ctx, err, ctrID, processID, pid)
				return
			}
			c.deliverExit(ctrID, processID, pid, st.ExitCode(), st.ExitTime(), "")
		}
	})
}

// waitFailed handles a Wait that failed: a process containerd no longer
// knows exited while nobody watched, with a status that is lost.
func (c *client) waitFailed(ctx context.Context, err error, ctrID, processID string, pid uint32) {
	// The client hands Wait's error over unconverted from gRPC.
	err = errgrpc.ToNative(err)
	if errdefs.IsNotFound(err) && ctx.Err() == nil {
		c.deliverExit(ctrID, processID, pid, ExitCodeUnknown, time.Now(), unknownExitReason)
		return
	}
	if ctx.Err() == nil {
		c.log.WithError(err).WithField("container", ctrID).WithField("process", processID).Warn("wait for exit failed; the next reconcile waits again")
	}
}

// handleEvent turns a containerd task event into a Backend event, dropping
// those of containers this client does not manage and the duplicates
// containerd publishes.
func (c *client) handleEvent(ev *events.Envelope) {
	v, err := typeurl.UnmarshalAny(ev.Event)
	if err != nil {
		c.log.WithError(err).WithField("topic", ev.Topic).Warn("cannot decode containerd event")
		return
	}
	switch e := v.(type) {
	case *apievents.TaskExit:
		c.deliverExit(e.ContainerID, e.ID, e.Pid, e.ExitStatus, e.ExitedAt.AsTime(), "")
	case *apievents.TaskOOM:
		c.mu.Lock()
		ct := c.containers[e.ContainerID]
		first := ct != nil && ct.task != nil && !ct.oomSeen
		if first {
			ct.oomSeen = true
		}
		c.mu.Unlock()
		if first {
			c.deliver(e.ContainerID, EventOOM, EventInfo{ContainerID: e.ContainerID, ProcessID: e.ContainerID})
		}
	case *apievents.TaskStart:
		c.deliverKnown(e.ContainerID, EventStart, EventInfo{ContainerID: e.ContainerID, ProcessID: e.ContainerID, Pid: e.Pid})
	case *apievents.TaskExecAdded:
		c.deliverKnown(e.ContainerID, EventExecAdded, EventInfo{ContainerID: e.ContainerID, ProcessID: e.ExecID})
	case *apievents.TaskExecStarted:
		c.deliverKnown(e.ContainerID, EventExecStarted, EventInfo{ContainerID: e.ContainerID, ProcessID: e.ExecID, Pid: e.Pid})
	case *apievents.TaskPaused:
		c.deliverKnown(e.ContainerID, EventPaused, EventInfo{ContainerID: e.ContainerID, ProcessID: e.ContainerID})
	case *apievents.TaskResumed:
		c.deliverKnown(e.ContainerID, EventResumed, EventInfo{ContainerID: e.ContainerID, ProcessID: e.ContainerID})
	}
}
