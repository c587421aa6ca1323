// Package storypb is the generated Go code of the reference's Story protobuf
// schema (interleave_story.proto). Regenerate with `make proto`.
package storypb

//go:generate protoc --go_out=. --go_opt=paths=source_relative interleave_story.proto
