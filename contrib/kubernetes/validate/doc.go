// Package validate checks the Kubernetes files of contrib/kubernetes: each
// document decodes strictly into its Kubernetes API type (an unknown or
// misspelt field is an error), and what the files say of one another and
// of listgate holds (validate_test.go). It is a module of its own so that
// listgate's go.mod does not carry the Kubernetes API modules; .ci/run
// runs its tests (`go test ./...` at the top does not reach a nested
// module).
package validate
