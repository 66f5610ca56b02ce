package integration

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	containerd "github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/pkg/netns"
	"github.com/containerd/containerd/v2/pkg/oci"
	gocni "github.com/containerd/go-cni"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/tendhq/tend/backend"
	"github.com/tendhq/tend/network"
)

// BenchmarkLifecycleNetwork: a container on a bridge network with one
// published port, from create to removed (namespace, CNI ADD, start, exit
// of `true`, CNI DEL, delete). tend: the backend with its network manager;
// raw: the containerd client with containerd's pkg/netns and go-cni on the
// same plugins (bridge with host-local, portmap, firewall, tuning;
// loopback), on a bridge of its own.
func BenchmarkLifecycleNetwork(b *testing.B) {
	root, err := os.MkdirTemp(testEnv.Root, "bench-net-")
	if err != nil {
		b.Fatal(err)
	}
	bridge, subnet := testBridge(root)
	nm, err := network.New(network.Config{Root: filepath.Join(root, "network"), Bridge: bridge, Subnet: subnet})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { cleanupBridges(b, root, bridge) })
	env := newEngineEnv(b, func(c *backend.Config) { c.Network = nm })

	rawBridge, rawSubnet := testBridge(root + "/raw")
	b.Cleanup(func() { cleanupBridges(b, root+"/raw", rawBridge) })
	conf := fmt.Sprintf(`{"cniVersion":"1.0.0","name":"bench-raw","plugins":[
		{"type":"bridge","bridge":%q,"isGateway":true,"ipMasq":true,"hairpinMode":true,
		 "ipam":{"type":"host-local","ranges":[[{"subnet":%q}]],"routes":[{"dst":"0.0.0.0/0"}],"dataDir":%q}},
		{"type":"portmap","capabilities":{"portMappings":true}},{"type":"firewall"},{"type":"tuning"}]}`,
		rawBridge, rawSubnet, filepath.Join(root, "raw-ipam"))
	cni, err := gocni.New(gocni.WithPluginDir(network.DefaultPluginDirs), gocni.WithMinNetworkCount(2))
	if err != nil {
		b.Fatal(err)
	}
	if err := cni.Load(gocni.WithLoNetwork, gocni.WithConfListBytes([]byte(conf))); err != nil {
		b.Fatal(err)
	}
	ctx := testCtx(b)
	rc := rawClient(b)
	// The raw side's CNI ids name iptables chains on the host: the pid
	// keeps them apart from those a killed run may have left.
	base := fmt.Sprintf("%s-%d-%d", testID(b), os.Getpid(), b.N)
	nsDir := filepath.Join(root, "raw-netns")
	pair(b, func(i int) {
		id := fmt.Sprintf("%s-raw-%d", base, i)
		ns, err := netns.NewNetNS(nsDir)
		if err != nil {
			b.Fatal(err)
		}
		port := gocni.PortMapping{HostPort: int32(20000 + i%10000), ContainerPort: 80, Protocol: "tcp", HostIP: "127.0.0.1"}
		if _, err := cni.Setup(ctx, id, ns.GetPath(), gocni.WithCapabilityPortMap([]gocni.PortMapping{port})); err != nil {
			b.Fatal(err)
		}
		ctr, err := rc.NewContainer(ctx, id, containerd.WithNewSpec(oci.WithDefaultPathEnv, oci.WithProcessArgs("true"),
			oci.WithRootFSPath(testEnv.Rootfs), oci.WithRootFSReadonly(),
			oci.WithLinuxNamespace(specs.LinuxNamespace{Type: specs.NetworkNamespace, Path: ns.GetPath()})))
		if err != nil {
			b.Fatal(err)
		}
		task, err := ctr.NewTask(ctx, rawIO(id))
		if err != nil {
			b.Fatal(err)
		}
		exitCh, err := task.Wait(ctx)
		if err != nil {
			b.Fatal(err)
		}
		if err := task.Start(ctx); err != nil {
			b.Fatal(err)
		}
		<-exitCh
		if _, err := task.Delete(ctx); err != nil {
			b.Fatal(err)
		}
		if err := cni.Remove(ctx, id, ns.GetPath(), gocni.WithCapabilityPortMap([]gocni.PortMapping{port})); err != nil {
			b.Fatal(err)
		}
		if err := ns.Remove(); err != nil {
			b.Fatal(err)
		}
		if err := ctr.Delete(ctx); err != nil {
			b.Fatal(err)
		}
	}, func(i int) {
		c := env.create(backend.CreateOptions{Cmd: []string{"true"}, Publish: []network.PortMapping{{HostIP: "127.0.0.1", ContainerPort: 80, Protocol: "tcp"}}})
		if err := env.e.Start(ctx, c.ID); err != nil {
			b.Fatal(err)
		}
		if _, err := env.e.Wait(ctx, c.ID, backend.WaitNotRunning); err != nil {
			b.Fatal(err)
		}
		if err := env.e.Remove(context.WithoutCancel(ctx), c.ID, true); err != nil {
			b.Fatal(err)
		}
	})
}
