package main

import (
	"flag"
	"fmt"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/akutan/akutan/proto/apipb"
)

// apiFlags adds --api to a command's flags.
func apiFlags(name, synopsis string) (*flag.FlagSet, *string) {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	addr := fs.String("api", defaultAPI, "gRPC address of an API server")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: akutan %s\n\nFlags:\n", synopsis)
		fs.PrintDefaults()
	}
	return fs, addr
}

func dialAPI(addr string) (apipb.AkutanClient, func(), error) {
	cc, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(256<<20), grpc.MaxCallSendMsgSize(64<<20)))
	if err != nil {
		return nil, nil, fmt.Errorf("api server %s: %w", addr, err)
	}
	return apipb.NewAkutanClient(cc), func() { cc.Close() }, nil
}
