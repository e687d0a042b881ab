//go:build !akutanpanic

package main

import "google.golang.org/grpc"

// testInterceptors are none in a normal build; see inject_panic.go.
func testInterceptors() ([]grpc.UnaryServerInterceptor, []grpc.StreamServerInterceptor) {
	return nil, nil
}
