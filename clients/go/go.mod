module riverlog.dev/client/go

// test.sh builds and tests this module offline, in module mode, against the
// sources of Debian bookworm's packages. The versions below are those
// packages' versions, except where a module listed here requires more than
// Debian has (google.golang.org/protobuf, golang.org/x/sys), and the split
// genproto module, which Debian does not package: README.md, "The module",
// says which, and what was verified.
go 1.19

require (
	google.golang.org/genproto/googleapis/rpc v0.0.0-20230525234030-28d5490b6b19
	google.golang.org/grpc v1.33.3
	google.golang.org/protobuf v1.30.0
)

require (
	github.com/golang/protobuf v1.5.2 // indirect
	golang.org/x/net v0.7.0 // indirect
	golang.org/x/sys v0.5.0 // indirect
	golang.org/x/text v0.7.0 // indirect
)
