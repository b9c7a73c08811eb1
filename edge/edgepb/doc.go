// Package edgepb holds the protobuf messages between a killfeed core and
// its edge nodes over Proto.Actor remote (see edge.proto). edge.pb.go is
// generated; regenerate it with `go generate ./edge/edgepb` (needs protoc
// and protoc-gen-go on PATH).
package edgepb

// Version is the protocol version an edge sends in Hello. The core refuses
// an edge whose version it does not speak. Version 2: a Fetch carries its
// owner and timeout, a FetchResult its unread token (Unread), and a core
// checks read keys' owners for its edges, which version 1 edges did not.
const Version = 2

//go:generate protoc --proto_path=../.. --go_out=../.. --go_opt=module=github.com/killfeed/killfeed edge/edgepb/edge.proto
