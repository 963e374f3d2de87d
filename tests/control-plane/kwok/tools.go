//go:build tools

// Package tools pins kwok (sigs.k8s.io/kwok/cmd/kwok), which simulates the nodes and pods of
// midihub's local control plane (scripts/control-plane), at the version go.mod requires.
package tools

import _ "sigs.k8s.io/kwok/cmd/kwok"
