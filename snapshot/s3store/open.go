package s3store

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"

	"github.com/akutan/akutan/snapshot"
)

func init() { snapshot.RegisterScheme("s3", open) }

// open opens s3://bucket[/prefix][?options]. The options are endpoint (e.g.
// http://127.0.0.1:9000), region, path_style (true for MinIO), sse
// ("AES256" or "aws:kms"), kms_key_id and max_attempts. Credentials come
// from the standard chain (AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY,
// shared files, roles).
func open(ctx context.Context, u *url.URL) (snapshot.Store, error) {
	rawURL := u.String()
	cfg := DefaultConfig()
	cfg.Bucket = u.Host
	cfg.Prefix = strings.Trim(u.Path, "/")
	q := u.Query()
	var errs []error
	for name, vals := range q {
		v := vals[len(vals)-1]
		switch name {
		case "endpoint":
			cfg.Endpoint = v
		case "region":
			cfg.Region = v
		case "path_style":
			b, err := strconv.ParseBool(v)
			if err != nil {
				errs = append(errs, fmt.Errorf("path_style %q is not a boolean", v))
			}
			cfg.PathStyle = b
		case "sse":
			cfg.SSE = v
		case "kms_key_id":
			cfg.KMSKeyID = v
		case "max_attempts":
			n, err := strconv.Atoi(v)
			if err != nil {
				errs = append(errs, fmt.Errorf("max_attempts %q is not a number", v))
			}
			cfg.MaxAttempts = n
		default:
			errs = append(errs, fmt.Errorf("unknown option %q", name))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("open store %s: %w", rawURL, err)
	}
	return New(ctx, cfg)
}
