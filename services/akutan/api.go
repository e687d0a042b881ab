package main

import (
	"flag"
	"fmt"
	"strings"

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

// parseMixed parses flags that may come before, between or after the
// positional arguments. Only "--name" arguments count as flags after the
// first positional one, so that values such as -5 stay positional.
func parseMixed(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		rest := fs.Args()
		i := 0
		for i < len(rest) && !strings.HasPrefix(rest[i], "--") {
			i++
		}
		pos = append(pos, rest[:i]...)
		if i == len(rest) {
			return pos, nil
		}
		args = rest[i:]
		if args[0] == "--" {
			return append(pos, args[1:]...), nil
		}
	}
}

func dialAPI(addr string) (apipb.AkutanClient, func(), error) {
	cc, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(256<<20), grpc.MaxCallSendMsgSize(64<<20)))
	if err != nil {
		return nil, nil, fmt.Errorf("api server %s: %w", addr, err)
	}
	return apipb.NewAkutanClient(cc), func() { cc.Close() }, nil
}
