// Command mkimage builds the test images without a registry: the busybox
// image as an OCI image-layout tar that containerd imports, optionally the
// same root filesystem as a directory, and the application image (several
// layers, ENTRYPOINT, CMD, ENV, WORKDIR, a non-root USER, VOLUME,
// STOPSIGNAL) built on the same busybox.
//
//	mkimage -busybox /bin/busybox -o build/busybox.tar -rootfs build/rootfs
//	mkimage -busybox /bin/busybox -app build/app.tar
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
	app := flag.String("app", "", "write the application image's OCI image-layout tar here")
	appRef := flag.String("app-ref", testimage.AppRef, "name of the application image")
	flag.Parse()
	if flag.NArg() != 0 || (*out == "" && *rootfs == "" && *app == "") {
		fmt.Fprintln(os.Stderr, "usage: mkimage [-busybox path] [-ref name] [-o image.tar] [-rootfs dir] [-app app.tar]")
		flag.PrintDefaults()
		os.Exit(2)
	}
	if err := run(*busybox, *out, *rootfs, *ref); err != nil {
		fmt.Fprintln(os.Stderr, "mkimage:", err)
		os.Exit(1)
	}
	if *app != "" {
		err := os.MkdirAll(filepath.Dir(*app), 0o755)
		if err == nil {
			err = testimage.WriteAppArchiveFile(*app, *busybox, *appRef)
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "mkimage:", err)
			os.Exit(1)
		}
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
