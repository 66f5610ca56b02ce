package cli

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/containerd/errdefs"
	"github.com/distribution/reference"
	dockerconfig "github.com/docker/cli/cli/config"
	"github.com/docker/cli/cli/config/configfile"
	"github.com/docker/cli/cli/config/types"

	"github.com/tendhq/tend/cmd/internal/api"
	"github.com/tendhq/tend/cmd/internal/client"
	"github.com/tendhq/tend/cmd/internal/format"
)

// dockerHubAuthKey is the key of Docker Hub's credentials in docker's
// config file.
const dockerHubAuthKey = "https://index.docker.io/v1/"

// loadDockerConfig reads docker's config file: $DOCKER_CONFIG/config.json
// or ~/.docker/config.json, as docker does.
func loadDockerConfig() (*configfile.ConfigFile, error) {
	cf, err := dockerconfig.Load(dockerconfig.Dir())
	if err != nil {
		return nil, fmt.Errorf("read docker config in %s: %w", dockerconfig.Dir(), err)
	}
	return cf, nil
}

// authKey is the config file's key of a registry host.
func authKey(host string) string {
	if host == "docker.io" {
		return dockerHubAuthKey
	}
	return host
}

// AuthFor returns the stored credentials of ref's registry (credential
// helpers included), or nil when there are none.
func AuthFor(ref string) (*api.AuthConfig, error) {
	named, err := reference.ParseNormalizedNamed(ref)
	if err != nil {
		return nil, fmt.Errorf("invalid image reference %q: %v: %w", ref, err, errdefs.ErrInvalidArgument)
	}
	cf, err := loadDockerConfig()
	if err != nil {
		return nil, err
	}
	a, err := cf.GetAuthConfig(authKey(reference.Domain(named)))
	if err != nil {
		return nil, fmt.Errorf("read credentials of %s: %w", reference.Domain(named), err)
	}
	if a.Username == "" && a.Password == "" && a.IdentityToken == "" {
		return nil, nil
	}
	return &api.AuthConfig{Username: a.Username, Password: a.Password, ServerAddress: a.ServerAddress, IdentityToken: a.IdentityToken}, nil
}

// PullOptions are the inputs of Pull.
type PullOptions struct {
	Ref      string
	Platform string
	Quiet    bool
	// Out gets the progress (a terminal gets bars) and, unless Quiet, the
	// last line; Stdout gets the reference (Quiet, as docker's -q).
	Out    io.Writer
	Stdout io.Writer
}

// Pull pulls an image with the daemon, showing per-layer progress.
func Pull(ctx context.Context, c *client.Client, opts PullOptions) error {
	auth, err := AuthFor(opts.Ref)
	if err != nil {
		return &StatusError{Code: 1, Err: err}
	}
	d := newProgressDisplay(opts.Out)
	fn := d.show
	if opts.Quiet {
		fn = nil
	}
	err = c.PullImage(ctx, opts.Ref, opts.Platform, auth, fn)
	d.finish()
	if err != nil {
		return &StatusError{Code: 1, Err: err}
	}
	if opts.Quiet {
		named, _ := reference.ParseNormalizedNamed(opts.Ref)
		fmt.Fprintln(opts.Stdout, reference.TagNameOnly(named).String())
		return nil
	}
	named, _ := reference.ParseNormalizedNamed(opts.Ref)
	fmt.Fprintln(opts.Out, reference.TagNameOnly(named).String())
	return nil
}

// Push pushes an image, showing per-layer progress on out.
func Push(ctx context.Context, c *client.Client, ref string, quiet bool, out io.Writer) error {
	auth, err := AuthFor(ref)
	if err != nil {
		return &StatusError{Code: 1, Err: err}
	}
	d := newProgressDisplay(out)
	fn := d.show
	if quiet {
		fn = nil
	}
	err = c.PushImage(ctx, ref, auth, fn)
	d.finish()
	if err != nil {
		return &StatusError{Code: 1, Err: err}
	}
	return nil
}

// PullPolicy is --pull of run and create.
type PullPolicy string

// The pull policies.
const (
	PullMissing PullPolicy = "missing"
	PullAlways  PullPolicy = "always"
	PullNever   PullPolicy = "never"
)

// ParsePullPolicy checks --pull.
func ParsePullPolicy(v string) (PullPolicy, error) {
	switch p := PullPolicy(v); p {
	case PullMissing, PullAlways, PullNever:
		return p, nil
	case "":
		return PullMissing, nil
	}
	return "", fmt.Errorf("invalid --pull %q: want missing, always or never: %w", v, errdefs.ErrInvalidArgument)
}

// EnsureImage applies a pull policy before a container is created from
// ref: always pulls; missing pulls when the engine lacks the image,
// saying so on stderr as docker does; never does nothing.
func EnsureImage(ctx context.Context, c *client.Client, ref string, policy PullPolicy, stderr io.Writer) error {
	switch policy {
	case PullNever:
		return nil
	case PullMissing:
		_, err := c.InspectImage(ctx, ref)
		if err == nil {
			return nil
		}
		if !errdefs.IsNotFound(err) {
			return &StatusError{Code: ExitEngineError, Err: err}
		}
		fmt.Fprintf(stderr, "Unable to find image '%s' locally\n", familiar(ref))
	}
	if err := Pull(ctx, c, PullOptions{Ref: ref, Out: stderr, Stdout: stderr}); err != nil {
		var se *StatusError
		if errors.As(err, &se) {
			se.Code = ExitEngineError
		}
		return err
	}
	return nil
}

// IsImageMissing reports a create refused for want of its image.
func IsImageMissing(err error) bool {
	return errdefs.IsNotFound(err) && strings.Contains(err.Error(), "image") && strings.Contains(err.Error(), "not found")
}

func familiar(ref string) string {
	named, err := reference.ParseNormalizedNamed(ref)
	if err != nil {
		return ref
	}
	return reference.FamiliarString(reference.TagNameOnly(named))
}

// LoginOptions are the inputs of Login.
type LoginOptions struct {
	Server        string
	Username      string
	Password      string
	PasswordStdin bool
	Streams
}

// Login checks the credentials with the daemon (which reaches the
// registry) and stores them in docker's config file, or its credential
// helper.
func Login(ctx context.Context, c *client.Client, opts LoginOptions) error {
	host := normalizeServer(opts.Server)
	if host == "" {
		return &StatusError{Code: 1, Err: fmt.Errorf("invalid registry %q: give a host such as localhost:5000", opts.Server)}
	}
	if opts.PasswordStdin {
		if opts.Username == "" {
			return &StatusError{Code: 1, Err: errors.New("--password-stdin needs --username")}
		}
		b, err := io.ReadAll(io.LimitReader(opts.Stdin, 1<<20))
		if err != nil {
			return &StatusError{Code: 1, Err: err}
		}
		opts.Password = strings.TrimRight(string(b), "\r\n")
	}
	in := bufio.NewReader(opts.Stdin)
	if opts.Username == "" {
		fmt.Fprintf(opts.Stdout, "Username: ")
		line, _ := in.ReadString('\n')
		opts.Username = strings.TrimSpace(line)
	}
	if opts.Password == "" {
		fmt.Fprintf(opts.Stdout, "Password: ")
		restore := disableEcho(opts.Stdin)
		line, _ := in.ReadString('\n')
		restore()
		fmt.Fprintln(opts.Stdout)
		opts.Password = strings.TrimRight(line, "\r\n")
	}
	if opts.Username == "" || opts.Password == "" {
		return &StatusError{Code: 1, Err: errors.New("username and password are required: give -u and -p or --password-stdin")}
	}
	auth := api.AuthConfig{Username: opts.Username, Password: opts.Password, ServerAddress: host}
	if err := c.Login(ctx, auth); err != nil {
		return &StatusError{Code: 1, Err: fmt.Errorf("login to %s: %w", host, err)}
	}
	cf, err := loadDockerConfig()
	if err != nil {
		return &StatusError{Code: 1, Err: err}
	}
	key := authKey(host)
	if err := cf.GetCredentialsStore(key).Store(types.AuthConfig{Username: opts.Username, Password: opts.Password, ServerAddress: key}); err != nil {
		return &StatusError{Code: 1, Err: fmt.Errorf("store credentials: %w", err)}
	}
	if err := cf.Save(); err != nil {
		return &StatusError{Code: 1, Err: fmt.Errorf("save %s: %w", cf.Filename, err)}
	}
	_ = os.Chmod(cf.Filename, 0o600)
	fmt.Fprintln(opts.Stdout, "Login Succeeded")
	return nil
}

// Logout removes the stored credentials of server.
func Logout(server string, stdout io.Writer) error {
	host := normalizeServer(server)
	if host == "" {
		return &StatusError{Code: 1, Err: fmt.Errorf("invalid registry %q", server)}
	}
	cf, err := loadDockerConfig()
	if err != nil {
		return &StatusError{Code: 1, Err: err}
	}
	key := authKey(host)
	if _, ok := cf.AuthConfigs[key]; !ok && cf.CredentialsStore == "" && cf.CredentialHelpers[key] == "" {
		fmt.Fprintf(stdout, "Not logged in to %s\n", host)
		return nil
	}
	fmt.Fprintf(stdout, "Removing login credentials for %s\n", host)
	if err := cf.GetCredentialsStore(key).Erase(key); err != nil {
		return &StatusError{Code: 1, Err: fmt.Errorf("erase credentials: %w", err)}
	}
	delete(cf.AuthConfigs, key)
	if err := cf.Save(); err != nil {
		return &StatusError{Code: 1, Err: fmt.Errorf("save %s: %w", cf.Filename, err)}
	}
	return nil
}

func normalizeServer(s string) string {
	s = strings.TrimSpace(s)
	if s == "" {
		return "docker.io"
	}
	if i := strings.Index(s, "://"); i >= 0 {
		s = s[i+3:]
	}
	s = strings.SplitN(s, "/", 2)[0]
	switch s {
	case "index.docker.io", "registry-1.docker.io", "docker.io":
		return "docker.io"
	case ".", "..":
		return ""
	}
	if strings.ContainsAny(s, " \t@\\") {
		return ""
	}
	return s
}

// Tag names an image anew.
func Tag(ctx context.Context, c *client.Client, src, dst string) error {
	if _, err := c.TagImage(ctx, src, dst); err != nil {
		return &StatusError{Code: 1, Err: err}
	}
	return nil
}

// ImageInspect prints images as a JSON array, as docker image inspect.
func ImageInspect(ctx context.Context, c *client.Client, refs []string, stdout, stderr io.Writer) error {
	var out []*api.ImageInspect
	var firstErr error
	for _, r := range refs {
		img, err := c.InspectImage(ctx, r)
		if err != nil {
			fmt.Fprintf(stderr, "Error: %v\n", err)
			if firstErr == nil {
				firstErr = err
			}
			continue
		}
		out = append(out, img)
	}
	if out == nil {
		out = []*api.ImageInspect{}
	}
	b, err := json.MarshalIndent(out, "", "    ")
	if err != nil {
		return err
	}
	fmt.Fprintln(stdout, string(b))
	if firstErr != nil {
		return &StatusError{Code: 1}
	}
	return nil
}

// Save writes the docker-archive tar of refs to path ("" or "-": w).
func Save(ctx context.Context, c *client.Client, refs []string, path string, w io.Writer) (retErr error) {
	if path != "" && path != "-" {
		tmp := path + ".tmp"
		f, err := os.OpenFile(tmp, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
		if err != nil {
			return &StatusError{Code: 1, Err: fmt.Errorf("create %s: %w", path, err)}
		}
		defer func() {
			if cerr := f.Close(); retErr == nil && cerr != nil {
				retErr = &StatusError{Code: 1, Err: cerr}
			}
			if retErr == nil {
				if err := os.Rename(tmp, path); err != nil {
					retErr = &StatusError{Code: 1, Err: err}
				}
			}
			if retErr != nil {
				os.Remove(tmp)
			}
		}()
		w = f
	} else if f, ok := w.(*os.File); ok && isTerminal(f) {
		return &StatusError{Code: 1, Err: errors.New("cowardly refusing to save to a terminal: use -o or redirect stdout")}
	}
	if err := c.SaveImages(ctx, refs, w); err != nil {
		return &StatusError{Code: 1, Err: err}
	}
	return nil
}

// Load loads a docker-archive or OCI layout tar and prints each image.
func Load(ctx context.Context, c *client.Client, r io.Reader, quiet bool, stdout io.Writer) error {
	err := c.LoadImages(ctx, r, func(ev api.ProgressEvent) {
		if !quiet || strings.HasPrefix(ev.Status, "Loaded image") {
			fmt.Fprintln(stdout, ev.Status)
		}
	})
	if err != nil {
		return &StatusError{Code: 1, Err: err}
	}
	return nil
}

// ImagePrune removes unused images and prints what it reclaimed.
func ImagePrune(ctx context.Context, c *client.Client, all bool, stdout io.Writer) error {
	rep, err := c.PruneImages(ctx, all)
	if err != nil {
		return &StatusError{Code: 1, Err: err}
	}
	if len(rep.Deleted) > 0 {
		fmt.Fprintln(stdout, "Deleted Images:")
		for _, r := range rep.Deleted {
			fmt.Fprintf(stdout, "untagged: %s\n", r)
		}
		fmt.Fprintln(stdout)
	}
	fmt.Fprintf(stdout, "Total reclaimed space: %s\n", format.HumanSize(rep.SpaceReclaimed))
	return nil
}
