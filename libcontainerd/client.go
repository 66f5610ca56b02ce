package libcontainerd

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	containerd "github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/pkg/identifiers"
	"github.com/containerd/containerd/v2/pkg/namespaces"
	"github.com/containerd/errdefs"
	"github.com/containerd/log"
	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/connectivity"

	"github.com/tendhq/tend/libcontainerd/internal/queue"
	"github.com/tendhq/tend/libcontainerd/internal/serving"
)

const (
	defaultSnapshotter = "overlayfs"
	defaultRuntime     = "io.containerd.runc.v2"
	// ioDrainTimeout bounds how long an exit waits for the process's output
	// to drain: a daemonised grandchild may hold the pipe open forever.
	ioDrainTimeout = 5 * time.Second
	// cleanupTimeout bounds clean-up that must outlive the caller's context.
	cleanupTimeout = 10 * time.Second
	// statusPollInterval paces the questions to a containerd coming back.
	statusPollInterval = 50 * time.Millisecond
)

var _ Client = (*client)(nil)

// ErrClosed is returned by every Client method called after Close (and by
// one that Close interrupts). It is of class errdefs.ErrFailedPrecondition,
// as the engine's own ErrClosed: the caller used a client it had closed; a
// new one must be made with New.
var ErrClosed = fmt.Errorf("libcontainerd: the client is closed: make a new one with New: %w", errdefs.ErrFailedPrecondition)

// Option configures New.
type Option func(*options)

type options struct {
	fifoRoot    string
	dialTimeout time.Duration
}

// WithFIFODir sets the private directory for stdio FIFOs, an absolute path:
// give each engine its own, under a root of its own. The default is
// "tend-fifo-<namespace>" under os.TempDir(). Either way New creates it
// 0700, and refuses one that exists but is a symlink, not a directory, not
// owned by the effective user or open to others: whoever can reach the FIFOs
// can read and write the containers' stdio.
func WithFIFODir(dir string) Option { return func(o *options) { o.fifoRoot = dir } }

// WithDialTimeout sets how long calls wait for an unreachable containerd
// before failing (default 10s).
func WithDialTimeout(d time.Duration) Option { return func(o *options) { o.dialTimeout = d } }

type client struct {
	cc       *containerd.Client
	ns       string
	backend  Backend
	fifoRoot string
	log      *log.Entry

	ctx    context.Context // carries the namespace; cancelled by Close
	cancel context.CancelFunc
	queue  queue.Queue    // per-container serial delivery to the Backend
	wg     sync.WaitGroup // the event loop and exit waiters

	mu         sync.Mutex
	containers map[string]*container
	genCtx     context.Context // the current event stream generation; cancelled when it breaks
	closed     bool
}

// New connects to containerd at address and starts the event stream for
// namespace; every task event of the containers this Client manages reaches
// backend. The connection is made lazily: New does not fail when containerd
// is not serving yet, the event stream waits for it.
func New(ctx context.Context, address, namespace string, backend Backend, opts ...Option) (Client, error) {
	if backend == nil {
		return nil, fmt.Errorf("libcontainerd.New: backend is nil: pass a Backend that receives task events: %w", errdefs.ErrInvalidArgument)
	}
	if err := identifiers.Validate(namespace); err != nil {
		return nil, fmt.Errorf("libcontainerd.New: namespace %q: %w", namespace, err)
	}
	o := options{dialTimeout: 10 * time.Second}
	for _, opt := range opts {
		opt(&o)
	}
	if o.fifoRoot == "" {
		o.fifoRoot = filepath.Join(os.TempDir(), "tend-fifo-"+namespace)
	}
	if err := privateDir(o.fifoRoot); err != nil {
		return nil, fmt.Errorf("libcontainerd.New: FIFO dir: %w", err)
	}
	cctx, cancel := context.WithCancel(namespaces.WithNamespace(context.WithoutCancel(ctx), namespace))
	cc, err := containerd.New(address,
		containerd.WithDefaultNamespace(namespace),
		containerd.WithTimeout(o.dialTimeout),
		containerd.WithExtraDialOpts([]grpc.DialOption{
			// Reconnect quickly after containerd restarts, and let a call
			// made meanwhile wait for it instead of failing at once.
			grpc.WithConnectParams(grpc.ConnectParams{Backoff: reconnectBackoff, MinConnectTimeout: o.dialTimeout}),
			grpc.WithChainUnaryInterceptor(closedGuard(cctx.Done()), waitReady(o.dialTimeout)),
		}))
	if err != nil {
		cancel()
		return nil, fmt.Errorf("connect to containerd at %s: %w", address, err)
	}
	c := &client{
		cc:         cc,
		ns:         namespace,
		backend:    backend,
		fifoRoot:   o.fifoRoot,
		log:        log.G(ctx).WithField("namespace", namespace),
		containers: make(map[string]*container),
		ctx:        cctx,
		cancel:     cancel,
	}
	subscribed := make(chan struct{})
	c.wg.Add(1)
	go c.processEventStream(subscribed)
	// Wait until containerd has our subscription, so that no event of a
	// container created after New returns can be missed. A containerd that
	// is not up yet is not waited for: the stream reconciles once it is.
	select {
	case <-subscribed:
	case <-time.After(o.dialTimeout):
		c.log.Warn("containerd did not confirm the event subscription in time; continuing, the stream reconciles when it does")
	case <-ctx.Done():
		c.Close()
		return nil, ctx.Err()
	}
	return c, nil
}

func (c *client) Version(ctx context.Context) (containerd.Version, error) {
	ctx, err := c.enter(ctx)
	if err != nil {
		return containerd.Version{}, err
	}
	v, err := c.cc.Version(ctx)
	if err != nil {
		return v, fmt.Errorf("containerd version: %w", err)
	}
	return v, nil
}

// spawn runs f on a goroutine the client owns: Close waits for it. Nothing
// is started once the client is closed or ctx has ended.
func (c *client) spawn(ctx context.Context, f func()) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed || ctx.Err() != nil {
		return
	}
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		f()
	}()
}

// enter starts a call: ErrClosed after Close, else the caller's context
// with the client's namespace.
func (c *client) enter(ctx context.Context) (context.Context, error) {
	if c.ctx.Err() != nil {
		return ctx, ErrClosed
	}
	return c.nsCtx(ctx), nil
}

// nsCtx puts the client's namespace on a caller's context.
func (c *client) nsCtx(ctx context.Context) context.Context {
	return namespaces.WithNamespace(ctx, c.ns)
}

func (c *client) Containerd() *containerd.Client { return c.cc }

func (c *client) Close() error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil
	}
	c.closed = true
	c.mu.Unlock()
	c.cancel()
	c.wg.Wait()
	c.queue.Close()
	return c.cc.Close()
}

var reconnectBackoff = backoff.Config{BaseDelay: 50 * time.Millisecond, Multiplier: 1.6, Jitter: 0.2, MaxDelay: time.Second}

// closedGuard fails every call with ErrClosed once closed is closed, so
// that callers of a closed client see a classed error, not gRPC's.
func closedGuard(closed <-chan struct{}) grpc.UnaryClientInterceptor {
	return func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
		select {
		case <-closed:
			return ErrClosed
		default:
		}
		err := invoker(ctx, method, req, reply, cc, opts...)
		if err != nil {
			select {
			case <-closed:
				return ErrClosed
			default:
			}
		}
		return err
	}
}

// waitReady makes a unary call wait, for at most timeout, until the
// connection to containerd is up again, so a call made during a containerd
// restart succeeds instead of failing with Unavailable. Long calls (Wait)
// are not bounded: only the wait for the connection is.
func waitReady(timeout time.Duration) grpc.UnaryClientInterceptor {
	return func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
		if cc.GetState() != connectivity.Ready {
			wctx, cancel := context.WithTimeout(ctx, timeout)
			// No pause: each question blocks until the state changes.
			serving.Wait(wctx, serving.Backoff{}, func(ctx context.Context) bool {
				s := cc.GetState()
				if s == connectivity.TransientFailure || s == connectivity.Idle {
					cc.ResetConnectBackoff()
					cc.Connect()
				}
				return s == connectivity.Ready || cc.WaitForStateChange(ctx, s) && cc.GetState() == connectivity.Ready
			})
			cancel()
		}
		return invoker(ctx, method, req, reply, cc, opts...)
	}
}
