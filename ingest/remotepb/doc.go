// Package remotepb holds the protobuf messages of killfeed's in-cluster
// ingest endpoint (see ingest.proto): InsertKillmail, sent to the named
// remote actor, and its reply InsertKillmailResult. ingest.pb.go is
// generated; regenerate it with `go generate ./ingest/remotepb` (needs protoc
// and protoc-gen-go on PATH).
package remotepb

//go:generate protoc --proto_path=../.. --go_out=../.. --go_opt=module=github.com/killfeed/killfeed ingest/remotepb/ingest.proto
