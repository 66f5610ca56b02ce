package main

import (
	"strings"

	"github.com/spf13/cobra"
)

// examples are the "Examples:" of each command's --help, by command path
// (without "engine"), for the commands that do not set their own Example.
// One table keeps them in one place, as docker's reference pages do.
var examples = map[string]string{
	"attach": `engine attach web
engine attach --no-stdin web`,
	"checkpoint": `engine checkpoint create --leave-running web cp1`,
	"checkpoint create": `engine checkpoint create web cp1
engine checkpoint create --leave-running web cp1`,
	"checkpoint ls": `engine checkpoint ls web`,
	"checkpoint rm": `engine checkpoint rm web cp1`,
	"completion": `source <(engine completion bash)
engine completion zsh > "${fpath[1]}/_engine"
engine completion fish > ~/.config/fish/completions/engine.fish`,
	"completion bash":       `source <(engine completion bash)`,
	"completion fish":       `engine completion fish > ~/.config/fish/completions/engine.fish`,
	"completion powershell": `engine completion powershell | Out-String | Invoke-Expression`,
	"completion zsh":        `engine completion zsh > "${fpath[1]}/_engine"`,
	"container":             `engine container prune -f`,
	"create": `engine create --name web -p 8080:80 nginx
engine create -it --name box busybox sh`,
	"daemon": `engine daemon
engine daemon --config-file /etc/tend/daemon.json --log-level debug
engine daemon --containerd-address /run/containerd/containerd.sock --namespace tend`,
	"events": `engine events
engine events --since 10m --until 0s --filter type=container --filter event=die
engine events --format '{{.Action}} {{.Actor.Attributes.name}} {{.Actor.Attributes.exitCode}}'`,
	"exec": `engine exec web ls /etc
engine exec -it web sh
engine exec -d -e MODE=batch web /bin/job`,
	"help": `engine help run`,
	"image": `engine image ls
engine image pull busybox`,
	"image import": `engine image import busybox.tar
cat busybox.tar | engine image import -`,
	"image inspect": `engine image inspect busybox`,
	"image load":    `engine image load -i busybox.tar`,
	"image ls": `engine image ls
engine image ls --format '{{.Repository}}:{{.Tag}} {{.Size}}'`,
	"image prune": `engine image prune -f`,
	"image pull":  `engine image pull busybox:1.36`,
	"image push":  `engine image push localhost:5000/busybox`,
	"image rm":    `engine image rm busybox`,
	"image save":  `engine image save -o busybox.tar busybox`,
	"image tag":   `engine image tag busybox localhost:5000/busybox`,
	"info": `engine info
engine info --format '{{.Containers}} containers'`,
	"inspect": `engine inspect web
engine inspect --format '{{.State.Status}} {{.State.ExitCode}}' web`,
	"kill": `engine kill web
engine kill --signal HUP web`,
	"load":   `engine load -i busybox.tar`,
	"login":  `engine login -u me localhost:5000`,
	"logout": `engine logout localhost:5000`,
	"logs": `engine logs web
engine logs -f --tail 10 web
engine logs --since 10m --until 5m --timestamps web
engine logs --details web`,
	"network": `engine network ls
engine network create backend`,
	"network connect":    `engine network connect backend web   # not supported: run web with --network backend`,
	"network create":     `engine network create --subnet 10.90.0.0/24 backend`,
	"network disconnect": `engine network disconnect backend web   # not supported: run web again without --network backend`,
	"network inspect":    `engine network inspect backend`,
	"network ls":         `engine network ls`,
	"network prune":      `engine network prune -f`,
	"network rm":         `engine network rm backend`,
	"pause":              `engine pause web`,
	"port": `engine port web
engine port web 80/tcp`,
	"pull": `engine pull busybox
engine pull -q localhost:5000/app:1.0`,
	"push":    `engine push localhost:5000/app:1.0`,
	"restart": `engine restart -t 5 web`,
	"rm": `engine rm web
engine rm -f -v web`,
	"run": `engine run --rm busybox echo hello
engine run -d --name web -p 8080:80 --restart unless-stopped nginx
engine run -it busybox sh
engine run --health-cmd 'wget -q -O- localhost' --health-interval 5s -d nginx`,
	"save": `engine save -o busybox.tar busybox`,
	"start": `engine start web
engine start -a -i box`,
	"stats": `engine stats
engine stats --no-stream web
engine stats --no-stream --format '{{.Name}} {{.CPUPerc}} {{.NetIO}}'`,
	"stop":    `engine stop -t 30 web`,
	"system":  `engine system df`,
	"tag":     `engine tag busybox localhost:5000/busybox`,
	"top":     `engine top web`,
	"unpause": `engine unpause web`,
	"version": `engine version
engine version --format '{{.Server.Version}}'`,
	"volume": `engine volume ls
engine volume create data`,
	"volume create":  `engine volume create --label app=db data`,
	"volume inspect": `engine volume inspect data`,
	"volume ls":      `engine volume ls`,
	"volume prune":   `engine volume prune -f`,
	"volume rm":      `engine volume rm data`,
	"wait":           `engine wait web`,
}

// addExamples gives every command of root without an Example its entry of
// examples, indented as cobra shows its own. Cobra's own help and
// completion commands are made first, so that they get theirs too.
func addExamples(root *cobra.Command) {
	root.InitDefaultHelpCmd()
	root.InitDefaultCompletionCmd()
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		for _, sub := range c.Commands() {
			walk(sub)
		}
		if c == root || c.Example != "" {
			return
		}
		path := strings.TrimPrefix(c.CommandPath(), root.Name()+" ")
		if ex, ok := examples[path]; ok {
			c.Example = "  " + strings.ReplaceAll(ex, "\n", "\n  ")
		}
	}
	walk(root)
}
