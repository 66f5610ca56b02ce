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

// Option configures New.
type Option func(*options)

type options struct {
	fifoRoot    string
	stateDir    string
	dialTimeout time.Duration
}

// WithFIFODir sets the private directory for stdio FIFOs (created 0700).
// The default is a directory under os.TempDir() named after the namespace;
// give each engine its own.
func WithFIFODir(dir string) Option { return func(o *options) { o.fifoRoot = dir } }

// WithContainerdStateDir tells the client containerd's state dir (its
// --state; /run/containerd by default). containerd 1.6 killed at the wrong
// moment can leave a task bundle behind without its task, and then fails
// every new task of that container; with the state dir, Start removes such a
// bundle when nothing uses it (logging a warning) and creates the task again.
// Without it Start fails with ErrFailedPrecondition naming the dir.
func WithContainerdStateDir(dir string) Option { return func(o *options) { o.stateDir = dir } }

// WithDialTimeout sets how long calls wait for an unreachable containerd
// before failing (default 10s).
func WithDialTimeout(d time.Duration) Option { return func(o *options) { o.dialTimeout = d } }

type client struct {
	cc       *containerd.Client
	ns       string
	backend  Backend
	fifoRoot string
	stateDir string // containerd's, or ""
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
	if o.stateDir != "" && !filepath.IsAbs(o.stateDir) {
		return nil, fmt.Errorf("libcontainerd.New: containerd state dir %q: want an absolute path: %w", o.stateDir, errdefs.ErrInvalidArgument)
	}
	if o.fifoRoot == "" {
		o.fifoRoot = fmt.Sprintf("%s/tend-fifo-%s", os.TempDir(), namespace)
	}
	if err := os.MkdirAll(o.fifoRoot, 0o700); err != nil {
		return nil, fmt.Errorf("create FIFO dir: %w", err)
	}
	cc, err := containerd.New(address,
		containerd.WithDefaultNamespace(namespace),
		containerd.WithTimeout(o.dialTimeout),
		containerd.WithExtraDialOpts([]grpc.DialOption{
			// Reconnect quickly after containerd restarts, and let a call
			// made meanwhile wait for it instead of failing at once.
			grpc.WithConnectParams(grpc.ConnectParams{Backoff: reconnectBackoff, MinConnectTimeout: o.dialTimeout}),
			grpc.WithChainUnaryInterceptor(waitReady(o.dialTimeout)),
		}))
	if err != nil {
		return nil, fmt.Errorf("connect to containerd at %s: %w", address, err)
	}
	c := &client{
		cc:         cc,
		ns:         namespace,
		backend:    backend,
		fifoRoot:   o.fifoRoot,
		stateDir:   o.stateDir,
		log:        log.G(ctx).WithField("namespace", namespace),
		containers: make(map[string]*container),
	}
	c.ctx, c.cancel = context.WithCancel(namespaces.WithNamespace(context.WithoutCancel(ctx), namespace))
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
	v, err := c.cc.Version(c.nsCtx(ctx))
	if err != nil {
		return v, fmt.Errorf("containerd version: %w", err)
	}
	return v, nil
}

// nsCtx puts the client's namespace on a caller's context.
func (c *client) nsCtx(ctx context.Context) context.Context {
	return namespaces.WithNamespace(ctx, c.ns)
}

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

// waitReady makes a unary call wait, for at most timeout, until the
// connection to containerd is up again, so a call made during a containerd
// restart succeeds instead of failing with Unavailable. Long calls (Wait)
// are not bounded: only the wait for the connection is.
func waitReady(timeout time.Duration) grpc.UnaryClientInterceptor {
	return func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
		if s := cc.GetState(); s != connectivity.Ready {
			wctx, cancel := context.WithTimeout(ctx, timeout)
			for s != connectivity.Ready {
				if s == connectivity.TransientFailure || s == connectivity.Idle {
					cc.ResetConnectBackoff()
					cc.Connect()
				}
				if !cc.WaitForStateChange(wctx, s) {
					break
				}
				s = cc.GetState()
			}
			cancel()
		}
		return invoker(ctx, method, req, reply, cc, opts...)
	}
}
