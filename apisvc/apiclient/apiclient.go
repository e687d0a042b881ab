package apiclient

import (
	"context"
	"errors"
	"fmt"
	"io"

	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"

	"github.com/akutan/akutan/proto/apipb"
)

// Stream is the answer stream of one lookup call.
type Stream = grpc.ServerStreamingClient[apipb.LookupResponse]

// ReadPage reads one page's stream (and the error of the call that opened
// it) into one response: the page's facts, its index and the next page's
// token.
func ReadPage(stream Stream, err error) (*apipb.LookupResponse, error) {
	if err != nil {
		return nil, err
	}
	var page *apipb.LookupResponse
	for {
		msg, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			if page == nil {
				return nil, errors.New("lookup answer ended without a message")
			}
			return page, nil
		}
		if err != nil {
			return nil, err
		}
		if page == nil {
			page = &apipb.LookupResponse{Index: msg.GetIndex()}
		} else if msg.GetIndex() != page.Index {
			return nil, fmt.Errorf("lookup answer changed index from %d to %d", page.Index, msg.GetIndex())
		}
		page.Facts = append(page.Facts, msg.GetFacts()...)
		page.NextPageToken = msg.GetNextPageToken()
	}
}

// ReadAll calls open with each page token in turn, "" first, and returns
// every page's facts in one response.
func ReadAll(open func(token string) (Stream, error)) (*apipb.LookupResponse, error) {
	var all *apipb.LookupResponse
	token := ""
	for {
		page, err := ReadPage(open(token))
		if err != nil {
			return nil, err
		}
		if all == nil {
			all = &apipb.LookupResponse{Index: page.Index}
		} else if page.Index != all.Index {
			return nil, fmt.Errorf("lookup pages read at indexes %d and %d", all.Index, page.Index)
		}
		all.Facts = append(all.Facts, page.Facts...)
		if token = page.NextPageToken; token == "" {
			return all, nil
		}
	}
}

// LookupS is the whole answer of c.LookupS.
func LookupS(ctx context.Context, c apipb.AkutanClient, req *apipb.LookupSRequest, opts ...grpc.CallOption) (*apipb.LookupResponse, error) {
	r := proto.Clone(req).(*apipb.LookupSRequest)
	return ReadAll(func(token string) (Stream, error) { r.PageToken = token; return c.LookupS(ctx, r, opts...) })
}

// LookupSP is the whole answer of c.LookupSP.
func LookupSP(ctx context.Context, c apipb.AkutanClient, req *apipb.LookupSPRequest, opts ...grpc.CallOption) (*apipb.LookupResponse, error) {
	r := proto.Clone(req).(*apipb.LookupSPRequest)
	return ReadAll(func(token string) (Stream, error) { r.PageToken = token; return c.LookupSP(ctx, r, opts...) })
}

// LookupSPO is the whole answer of c.LookupSPO.
func LookupSPO(ctx context.Context, c apipb.AkutanClient, req *apipb.LookupSPORequest, opts ...grpc.CallOption) (*apipb.LookupResponse, error) {
	r := proto.Clone(req).(*apipb.LookupSPORequest)
	return ReadAll(func(token string) (Stream, error) { r.PageToken = token; return c.LookupSPO(ctx, r, opts...) })
}

// LookupPO is the whole answer of c.LookupPO.
func LookupPO(ctx context.Context, c apipb.AkutanClient, req *apipb.LookupPORequest, opts ...grpc.CallOption) (*apipb.LookupResponse, error) {
	r := proto.Clone(req).(*apipb.LookupPORequest)
	return ReadAll(func(token string) (Stream, error) { r.PageToken = token; return c.LookupPO(ctx, r, opts...) })
}

// LookupPOCmp is the whole answer of c.LookupPOCmp.
func LookupPOCmp(ctx context.Context, c apipb.AkutanClient, req *apipb.LookupPOCmpRequest, opts ...grpc.CallOption) (*apipb.LookupResponse, error) {
	r := proto.Clone(req).(*apipb.LookupPOCmpRequest)
	return ReadAll(func(token string) (Stream, error) { r.PageToken = token; return c.LookupPOCmp(ctx, r, opts...) })
}
