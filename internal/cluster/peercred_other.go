//go:build !linux

package cluster

import "net"

// SocketPeerUID is -1 where SO_PEERCRED is not available.
func SocketPeerUID(net.Conn) int { return -1 }
