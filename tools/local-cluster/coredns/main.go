// CoreDNS for the local CI cluster, with only the plugins its Corefile uses.
//
// Upstream's main (coredns.go) imports core/plugin, which links every in-tree plugin,
// cloud DNS providers and their SDKs included. Importing the few needed here is CoreDNS's
// documented way to choose plugins at compile time, and keeps a cold build short.
package main

import (
	"github.com/coredns/coredns/coremain"

	_ "github.com/coredns/coredns/plugin/bind"
	_ "github.com/coredns/coredns/plugin/cache"
	_ "github.com/coredns/coredns/plugin/errors"
	_ "github.com/coredns/coredns/plugin/health"
	_ "github.com/coredns/coredns/plugin/kubernetes"
	_ "github.com/coredns/coredns/plugin/ready"
)

func main() {
	coremain.Run()
}
