// Command etcd is a minimal etcd server entry point built from the published
// go.etcd.io/etcd/server/v3 module for the end-to-end test control plane.
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() {
	etcdmain.Main(os.Args)
}
