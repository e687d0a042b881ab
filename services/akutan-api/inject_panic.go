//go:build akutanpanic

package main

import (
	"context"

	"google.golang.org/grpc"

	"github.com/akutan/akutan/proto/apipb"
)

// PanicName is the subject name whose LookupS panics in a binary built
// with -tags akutanpanic: the panic-injection test of the lifecycle's
// recovery interceptor (panic_test.go). Never in a normal build.
const PanicName = "__panic__"

// testInterceptors panic inside the handler chain, below the recovery
// interceptor, on a LookupS of PanicName.
func testInterceptors() ([]grpc.UnaryServerInterceptor, []grpc.StreamServerInterceptor) {
	return []grpc.UnaryServerInterceptor{func(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
		if r, ok := req.(*apipb.LookupSRequest); ok {
			for _, n := range r.GetSubjects() {
				if n.GetName() == PanicName {
					panic("injected panic: LookupS " + PanicName)
				}
			}
		}
		return h(ctx, req)
	}}, nil
}
