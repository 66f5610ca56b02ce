package backend

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"syscall"

	"github.com/containerd/containerd/v2/core/remotes"
	"github.com/containerd/containerd/v2/core/remotes/docker"
	dockerconfig "github.com/containerd/containerd/v2/core/remotes/docker/config"
	remoteerrors "github.com/containerd/containerd/v2/core/remotes/errors"
	"github.com/containerd/errdefs"
	"github.com/distribution/reference"
)

// RegistryConfig says how the engine reaches registries.
type RegistryConfig struct {
	// Insecure lists registries ("host" or "host:port") reached over plain
	// HTTP, as docker's --insecure-registry. localhost and 127.0.0.0/8 are
	// always allowed HTTP (HTTPS is tried first), as docker does.
	Insecure []string
	// CertsDir holds per-registry TLS settings in docker's certs.d layout
	// (<dir>/<host:port>/ca.crt, client.cert, client.key) or containerd's
	// hosts.toml; empty: none.
	CertsDir string
}

// Credentials returns the user name and secret for a registry host; ""
// and "" mean anonymous. A username of "" with a secret is an identity
// token.
type Credentials func(host string) (user, secret string, err error)

func (e *Engine) isInsecure(host string) bool {
	for _, h := range e.cfg.Registry.Insecure {
		if strings.EqualFold(h, host) {
			return true
		}
	}
	return false
}

// resolver returns a containerd resolver for the engine's registry
// settings with creds.
func (e *Engine) resolver(ctx context.Context, creds Credentials) remotes.Resolver {
	return docker.NewResolver(docker.ResolverOptions{Hosts: e.registryHosts(ctx, creds)})
}

func (e *Engine) registryHosts(ctx context.Context, creds Credentials) docker.RegistryHosts {
	return func(host string) ([]docker.RegistryHost, error) {
		opts := dockerconfig.HostOptions{}
		if creds != nil {
			opts.Credentials = func(h string) (string, string, error) { return creds(h) }
		}
		if e.cfg.Registry.CertsDir != "" {
			opts.HostDir = dockerconfig.HostDirFromRoot(e.cfg.Registry.CertsDir)
		}
		if e.isInsecure(host) {
			opts.DefaultScheme = "http"
		}
		return dockerconfig.ConfigureHosts(ctx, opts)(host)
	}
}

// registryHost is the registry part of a normalized reference, as the
// config file keys it (docker.io for docker hub).
func registryHost(ref string) string {
	named, err := reference.ParseNormalizedNamed(ref)
	if err != nil {
		return ""
	}
	return reference.Domain(named)
}

// classifyRegistryError turns the resolver's errors into errdefs classes
// with messages that say what to do: a refused login names `engine login`,
// an unknown image says so, a registry that cannot be reached says that.
func classifyRegistryError(ref string, err error) error {
	if err == nil {
		return nil
	}
	host := registryHost(ref)
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	var status remoteerrors.ErrUnexpectedStatus
	switch {
	case errors.Is(err, docker.ErrInvalidAuthorization),
		errors.As(err, &status) && (status.StatusCode == http.StatusUnauthorized || status.StatusCode == http.StatusForbidden):
		return fmt.Errorf("access to %s denied by registry %s (%v): log in with `engine login %s` and retry: %w", ref, host, err, host, errdefs.ErrUnauthenticated)
	case errdefs.IsNotFound(err):
		return fmt.Errorf("image %s not found in registry %s (%v): check the name and tag: %w", ref, host, err, errdefs.ErrNotFound)
	case errors.As(err, &status) && status.StatusCode == http.StatusNotFound:
		return fmt.Errorf("image %s not found in registry %s (%v): check the name and tag: %w", ref, host, err, errdefs.ErrNotFound)
	case isUnreachable(err) && docker.IsLocalhost(host):
		return fmt.Errorf("registry %s unreachable (%v): check that it runs and the address: %w", host, err, errdefs.ErrUnavailable)
	case isUnreachable(err):
		return fmt.Errorf("registry %s unreachable (%v): check that it runs and the address (plain HTTP needs --insecure-registry %s on the daemon): %w", host, err, host, errdefs.ErrUnavailable)
	}
	return err
}

func isUnreachable(err error) bool {
	var op *net.OpError
	var ue *url.Error
	var dns *net.DNSError
	return errors.As(err, &op) || errors.As(err, &dns) || errors.As(err, &ue) ||
		errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNRESET) ||
		errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) ||
		strings.Contains(err.Error(), "connection refused") || strings.Contains(err.Error(), "connection reset")
}

// Login checks creds against a registry's /v2/ endpoint, as `docker login`
// does, through the same hosts (TLS, insecure) as pulls. A refusal is
// errdefs.ErrUnauthenticated.
func (e *Engine) Login(ctx context.Context, server, user, secret string) error {
	if e.isClosed() {
		return ErrClosed
	}
	host := NormalizeRegistryHost(server)
	if host == "" {
		return fmt.Errorf("invalid registry %q: give a host such as localhost:5000: %w", server, errdefs.ErrInvalidArgument)
	}
	creds := func(string) (string, string, error) { return user, secret, nil }
	hosts, err := e.registryHosts(ctx, creds)(host)
	if err != nil {
		return fmt.Errorf("registry %s: %w", host, err)
	}
	var lastErr error
	for _, h := range hosts {
		lastErr = pingRegistry(ctx, h)
		if lastErr == nil {
			return nil
		}
	}
	if lastErr == nil {
		lastErr = fmt.Errorf("no endpoint configured for %s", host)
	}
	err = classifyRegistryError(host+"/x", lastErr)
	if errdefs.IsUnauthorized(err) {
		return fmt.Errorf("registry %s refused the credentials of %q (%v): check the user name and password: %w", host, user, lastErr, errdefs.ErrUnauthenticated)
	}
	return err
}

func pingRegistry(ctx context.Context, h docker.RegistryHost) error {
	u := url.URL{Scheme: h.Scheme, Host: h.Host, Path: h.Path + "/"}
	for attempt := 0; attempt < 2; attempt++ {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
		if err != nil {
			return err
		}
		if attempt > 0 {
			if err := h.Authorizer.Authorize(ctx, req); err != nil {
				return err
			}
		}
		resp, err := h.Client.Do(req)
		if err != nil {
			return err
		}
		resp.Body.Close()
		switch {
		case resp.StatusCode == http.StatusUnauthorized && attempt == 0:
			if err := h.Authorizer.AddResponses(ctx, []*http.Response{resp}); err != nil {
				return err
			}
			continue
		case resp.StatusCode >= 200 && resp.StatusCode < 300:
			return nil
		default:
			return remoteerrors.NewUnexpectedStatusErr(resp)
		}
	}
	return fmt.Errorf("%w: credentials refused", docker.ErrInvalidAuthorization)
}

// NormalizeRegistryHost turns what a user gives `login` (a host, a URL,
// docker.io or index.docker.io) into the registry host credentials are
// looked up by; "" when it is not one.
func NormalizeRegistryHost(server string) string {
	s := strings.TrimSpace(server)
	if i := strings.Index(s, "://"); i >= 0 {
		s = s[i+3:]
	}
	s = strings.TrimSuffix(strings.SplitN(s, "/", 2)[0], "/")
	switch s {
	case "", ".", "..":
		return ""
	case "index.docker.io", "registry-1.docker.io", "docker.io":
		return "docker.io"
	}
	if strings.ContainsAny(s, " \t@\\") {
		return ""
	}
	return s
}
