#!/usr/bin/env bash
# setup.sh prepares a Debian machine (bookworm or later) to build and test
# tend, as root. Idempotent: it installs only what is missing and never
# starts a system containerd (tests run their own private daemons).
#
# It leaves in build/:
#   env.sh       PATH (the Go toolchain) and TEND_* variables; source it
#   busybox.tar  the test image (OCI archive), rootfs/ the same as a dir
#   criu-path    dir holding criu, if scripts/criu.sh exists
#   engine       the engine CLI, if cmd/engine exists
#   engined      the engine daemon, if cmd/engined exists (`engine daemon` runs it)
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)

say() { echo "setup: $*" >&2; }
die() { echo "setup: ERROR: $*" >&2; exit 1; }

[ "$(id -u)" -eq 0 ] || die "run as root: it installs packages and the tests need root"
command -v dpkg >/dev/null || die "not a Debian system (no dpkg): install containerd, runc, busybox-static, iptables and Go yourself"

mkdir -p build

# --- Debian packages -------------------------------------------------------
# gcc and libc6-dev: go test -race needs cgo.
packages=(containerd runc busybox-static iptables ca-certificates git gcc libc6-dev)
# docker-registry (distribution 2.8): the registry tests and the demo start their own on 127.0.0.1;
# its system service is never started (policy-rc.d below) and is disabled after the install.
packages+=(docker-registry)
# networking: the CNI plugins (bridge, host-local, portmap, firewall,
# loopback, tuning) in /usr/lib/cni, driven through libcni (what go-cni wraps).
packages+=(containernetworking-plugins)
# docker.io: the docker CLI that the Docker API tests drive (/usr/bin/docker); its dockerd runs only
# privately, in the benchmark that compares it with tend (never as the system service)
packages+=(docker.io)
# docker-compose (1.29, Python): TestDockerCompose runs a two-service file against the Docker API
packages+=(docker-compose)
missing=()
for p in "${packages[@]}"; do
	dpkg -s "$p" 2>/dev/null | grep -q '^Status: install ok installed' || missing+=("$p")
done

need_go=""
go_required=$(awk '$1 == "go" { print $2; exit }' go.mod)
# version_ge A B: is Go version A >= B (1.26.6 style; missing parts are 0)?
version_ge() {
	local IFS=.
	local -a a=($1) b=($2)
	for i in 0 1 2; do
		local x=${a[i]:-0} y=${b[i]:-0}
		((10#$x > 10#$y)) && return 0
		((10#$x < 10#$y)) && return 1
	done
	return 0
}
go_version() { "$1" env GOVERSION 2>/dev/null | sed 's/^go//; s/[^0-9.].*//'; }

gobin=$(command -v go || true)
[ -z "$gobin" ] && [ -x /usr/local/go/bin/go ] && gobin=/usr/local/go/bin/go
if [ -z "$gobin" ]; then
	missing+=(golang-go)
	need_go=1
fi

if [ ${#missing[@]} -gt 0 ]; then
	say "installing ${missing[*]}"
	# Keep maintainer scripts from starting services (containerd.service):
	# policy-rc.d is honoured by invoke-rc.d and deb-systemd-invoke.
	created_policy=""
	if [ ! -e /usr/sbin/policy-rc.d ]; then
		printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
		chmod 755 /usr/sbin/policy-rc.d
		created_policy=1
	fi
	trap 'if [ -n "$created_policy" ]; then rm -f /usr/sbin/policy-rc.d; fi' EXIT
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq >&2
	apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
	if [ -n "$created_policy" ]; then
		rm -f /usr/sbin/policy-rc.d
		created_policy=""
	fi
	# The registry's unit is enabled by its package: no registry on :5000 at boot.
	if command -v deb-systemd-helper >/dev/null; then deb-systemd-helper disable docker-registry.service >/dev/null 2>&1 || true; fi
else
	say "packages present: ${packages[*]}"
fi
# docker.io ships dockerd's units: tend's Docker API tests talk to tend's own socket, so a dockerd
# (and the system containerd it wants) must not run; systemd would start them at the next boot.
if [ -d /run/systemd/system ] && command -v systemctl >/dev/null; then
	systemctl disable --now docker.socket docker.service >/dev/null 2>&1 || true
fi

# --- Go ----------------------------------------------------------------------
[ -n "$need_go" ] && gobin=$(command -v go)
[ -n "$gobin" ] || die "no go command after installing golang-go"
have=$(go_version "$gobin")
goroot_bin=$(dirname "$gobin")
if ! version_ge "$have" "$go_required"; then
	if version_ge "$have" 1.21; then
		# GOTOOLCHAIN=auto fetches golang.org/toolchain through the module proxy.
		say "go $have < $go_required: the go command fetches go$go_required (GOTOOLCHAIN=auto)"
		export GOTOOLCHAIN=auto
	else
		# Too old to switch toolchains itself (Debian bookworm has 1.19):
		# fetch the toolchain module through the proxy and use it directly.
		arch=$("$gobin" env GOARCH)
		mod="golang.org/toolchain@v0.0.1-go${go_required}.linux-${arch}"
		say "go $have cannot switch toolchains: downloading $mod"
		dir=$(cd /tmp && GO111MODULE=on GOFLAGS=-mod=mod "$gobin" mod download -json "$mod" |
			sed -n 's/^[[:space:]]*"Dir": "\(.*\)",*$/\1/p')
		[ -n "$dir" ] && [ -f "$dir/bin/go" ] || die "download of $mod failed: check access to the Go module proxy (GOPROXY)"
		# Module zips carry no modes: make the commands executable, as the
		# go command does on a toolchain switch.
		chmod a+x "$dir"/bin/* "$dir"/pkg/tool/*/* 2>/dev/null || true
		goroot_bin="$dir/bin"
		gobin="$dir/bin/go"
	fi
fi
export PATH="$goroot_bin:$PATH"
say "using $("$gobin" version)"

# --- Go modules ---------------------------------------------------------------
say "downloading Go modules"
go mod download

# --- test image ---------------------------------------------------------------
busybox=/bin/busybox
[ -x "$busybox" ] || busybox=$(command -v busybox || true)
[ -n "$busybox" ] || die "no busybox binary after installing busybox-static"
say "building test image build/busybox.tar and build/rootfs from $busybox"
go run ./tools/mkimage -busybox "$busybox" -o build/busybox.tar -rootfs build/rootfs
# The application image: several layers, ENTRYPOINT+CMD, ENV, WORKDIR, a
# non-root USER, VOLUME, STOPSIGNAL (the image-config and confinement tests).
say "building test image build/app.tar"
go run ./tools/mkimage -busybox "$busybox" -app build/app.tar

# --- criu -----------------------------------------------------------------------
criu_path=""
rm -f build/criu-path
if [ -f scripts/criu.sh ]; then
	say "provisioning criu (scripts/criu.sh)"
	if out=$(bash scripts/criu.sh); then
		criu_path=$(printf '%s\n' "$out" | tail -n 1)
		if [ -n "$criu_path" ] && [ -d "$criu_path" ]; then
			echo "$criu_path" >build/criu-path
			say "criu in $criu_path"
		else
			say "WARNING: scripts/criu.sh printed no directory on its last line; checkpoint tests will lack criu"
			criu_path=""
		fi
	else
		say "WARNING: scripts/criu.sh failed; checkpoint tests will lack criu"
	fi
fi

# --- newer containerd daemons ------------------------------------------------------
# libcontainerd must also work against containerd 1.7 and 2.x, which clean up
# exited tasks at restart where 1.6 keeps them: the suite runs against each.
alt_paths=()
for v in 1.7 2; do
	say "provisioning containerd $v (scripts/containerd-alt.sh --version $v)"
	out=$(bash scripts/containerd-alt.sh --version "$v") || die "scripts/containerd-alt.sh --version $v failed: the compatibility tests need it"
	dir=$(printf '%s\n' "$out" | tail -n 1)
	[ -x "$dir/containerd" ] || die "scripts/containerd-alt.sh --version $v printed no bin dir"
	alt_paths+=("$v=$dir")
done

# --- engine ---------------------------------------------------------------------
# Two binaries: engine, the light CLI, and engined, the daemon, side by
# side (`engine daemon` runs the engined next to it).
for bin in engine engined; do
	[ -d "cmd/$bin" ] || continue
	say "building build/$bin"
	# The CLI is static (no cgo): every command starts it, and the dynamic
	# loader and libc cost it ~60 page faults of ~700 (README, "The CLI is a
	# light binary"). It needs no libc: it only dials a unix socket.
	build_env=()
	[ "$bin" = engine ] && build_env=(CGO_ENABLED=0)
	# A broken engine must not hide the test report: go vet and the tests
	# fail on it too.
	if ! env "${build_env[@]}" go build -o "build/$bin" "./cmd/$bin"; then
		rm -f "build/$bin"
		say "WARNING: building build/$bin failed (see above)"
	fi
done
if [ -f cmd/tend-init/tend-init.c ]; then
	# The containers' PID 1: C (one runs per container, and a Go runtime
	# costs ~10x its memory), static: it runs in images of any kind. The
	# engine looks for it next to itself, then in PATH (for embedders).
	say "building build/tend-init, installing /usr/local/bin/tend-init"
	if gcc -static -Os -Wall -o build/tend-init cmd/tend-init/tend-init.c; then
		cmp -s build/tend-init /usr/local/bin/tend-init || install -m 0755 build/tend-init /usr/local/bin/tend-init
	else
		rm -f build/tend-init
		say "WARNING: building build/tend-init failed (see above)"
	fi
fi

# --- install the engine ------------------------------------------------
# As an engine is installed: engine, engined and tend-init on PATH, a systemd unit
# (installed, not enabled nor started: tests run their own daemons) and a
# default config, /etc/tend/daemon.json, that `engine daemon` reads (flags
# override it). An existing config is kept.
if [ -x build/engine ]; then
	say "installing /usr/local/bin/engine, /usr/local/bin/engined, tend.service, /etc/tend/daemon.json"
	cmp -s build/engine /usr/local/bin/engine || install -m 0755 build/engine /usr/local/bin/engine
	if [ -x build/engined ]; then
		cmp -s build/engined /usr/local/bin/engined || install -m 0755 build/engined /usr/local/bin/engined
	fi
	install -d -m 0755 /etc/tend
	[ -e /etc/tend/daemon.json ] || install -m 0644 scripts/install/daemon.json /etc/tend/daemon.json
	if [ -d /etc/systemd/system ] || [ -d /lib/systemd/system ]; then
		install -d -m 0755 /etc/systemd/system
		install -m 0644 scripts/install/tend.service /etc/systemd/system/tend.service
	fi
	install -d -m 0755 /usr/local/share/doc/tend
	install -m 0644 README.md /usr/local/share/doc/tend/README.md
	if [ -d /usr/share/bash-completion/completions ]; then
		/usr/local/bin/engine completion bash >/usr/share/bash-completion/completions/engine 2>/dev/null || true
	fi
fi

# --- environment for scripts/test.sh ---------------------------------------------
{
	echo "# written by scripts/setup.sh"
	printf 'export PATH=%q:"$PATH"\n' "$goroot_bin"
	[ -n "${GOTOOLCHAIN:-}" ] && printf 'export GOTOOLCHAIN=%q\n' "$GOTOOLCHAIN"
	printf 'export TEND_TEST_IMAGE=%q\n' "$repo/build/busybox.tar"
	printf 'export TEND_TEST_ROOTFS=%q\n' "$repo/build/rootfs"
	printf 'export TEND_TEST_APP_IMAGE=%q\n' "$repo/build/app.tar"
	printf 'export TEND_BUSYBOX=%q\n' "$busybox"
	[ -n "$criu_path" ] && printf 'export TEND_CRIU_PATH=%q\n' "$criu_path"
	printf 'export TEND_CONTAINERD_ALT=%q\n' "${alt_paths[*]}"
	true
} >build/env.sh

# Tests run private containerd daemons on their own sockets; a system
# containerd on /run/containerd/containerd.sock is not used. Say so if one runs.
if [ -S /run/containerd/containerd.sock ]; then
	say "note: a system containerd serves /run/containerd/containerd.sock; the tests do not use it"
fi
say "done"
