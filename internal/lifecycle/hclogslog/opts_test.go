package hclogslog

import "github.com/hashicorp/go-hclog"

func hclogStdOpts() hclog.StandardLoggerOptions {
	return hclog.StandardLoggerOptions{InferLevels: true}
}
