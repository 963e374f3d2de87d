// Command etcd is etcd's server, built from its Go module at the version go.mod pins, for the
// local control plane of midihub's tests (scripts/control-plane).
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() {
	etcdmain.Main(os.Args)
}
