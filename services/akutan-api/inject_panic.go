//go:build akutanpanic

package main

import (
	"google.golang.org/grpc"

	"github.com/akutan/akutan/proto/apipb"
)

// PanicName is the subject name whose LookupS panics in a binary built
// with -tags akutanpanic: the panic-injection test of the lifecycle's
// recovery interceptor (panic_test.go). Never in a normal build.
const PanicName = "__panic__"

// testInterceptors panic inside the handler chain, below the recovery
// interceptor, on a LookupS (a server stream) of PanicName.
func testInterceptors() ([]grpc.UnaryServerInterceptor, []grpc.StreamServerInterceptor) {
	return nil, []grpc.StreamServerInterceptor{func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, h grpc.StreamHandler) error {
		return h(srv, panicky{ss})
	}}
}

// panicky panics when it receives a LookupS of PanicName.
type panicky struct{ grpc.ServerStream }

func (p panicky) RecvMsg(m any) error {
	if err := p.ServerStream.RecvMsg(m); err != nil {
		return err
	}
	if r, ok := m.(*apipb.LookupSRequest); ok {
		for _, n := range r.GetSubjects() {
			if n.GetName() == PanicName {
				panic("injected panic: LookupS " + PanicName)
			}
		}
	}
	return nil
}
