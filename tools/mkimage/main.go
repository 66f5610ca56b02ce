// Command mkimage builds the busybox test image without a registry: an OCI
// image-layout tar that containerd imports, and optionally the same root
// filesystem as a directory.
//
//	mkimage -busybox /bin/busybox -o build/busybox.tar -rootfs build/rootfs
package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"

	"github.com/tendhq/tend/internal/testimage"
)

func main() {
	busybox := flag.String("busybox", "/bin/busybox", "statically linked busybox binary (Debian: busybox-static)")
	out := flag.String("o", "", "write the OCI image-layout tar here")
	rootfs := flag.String("rootfs", "", "also build the root filesystem in this directory")
	ref := flag.String("ref", testimage.DefaultRef, "image name recorded in the archive (io.containerd.image.name)")
	flag.Parse()
	if flag.NArg() != 0 || (*out == "" && *rootfs == "") {
		fmt.Fprintln(os.Stderr, "usage: mkimage [-busybox path] [-ref name] -o image.tar [-rootfs dir]")
		flag.PrintDefaults()
		os.Exit(2)
	}
	if err := run(*busybox, *out, *rootfs, *ref); err != nil {
		fmt.Fprintln(os.Stderr, "mkimage:", err)
		os.Exit(1)
	}
}

func run(busybox, out, rootfs, ref string) error {
	if out != "" {
		if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
			return err
		}
		if err := testimage.WriteOCIArchiveFile(out, busybox, ref); err != nil {
			return err
		}
	}
	if rootfs != "" {
		if err := testimage.BuildRootfs(rootfs, busybox); err != nil {
			return err
		}
	}
	return nil
}
