// Package s3store is the snapshot.Store on Amazon S3 or any S3-compatible
// service (MinIO in the tests and the local stack), on aws-sdk-go-v2. It is
// its own package so that binaries that never open a bucket (the API
// server) do not link the AWS SDK; importing it registers the s3:// scheme
// with snapshot.OpenStore.
package s3store

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/ratelimit"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"

	"github.com/akutan/akutan/snapshot"
)

// Config configures a Store. Start from DefaultConfig.
type Config struct {
	// Endpoint is the service's base URL, e.g. "http://127.0.0.1:9000" for
	// MinIO; empty means AWS's endpoint for Region.
	Endpoint string
	// Region; empty means the standard chain's (AWS_REGION, ~/.aws/config),
	// else us-east-1.
	Region string
	// Bucket holds the objects.
	Bucket string
	// Prefix, if set, keeps every key under Prefix + "/" in the bucket.
	Prefix string
	// AccessKey and SecretKey (and SessionToken) are static credentials;
	// empty means the standard chain (environment, shared files, SSO, IMDS).
	AccessKey, SecretKey, SessionToken string
	// PathStyle addresses the bucket as endpoint/bucket/key rather than
	// bucket.endpoint/key. MinIO needs it.
	PathStyle bool
	// SSE is the server-side encryption to ask for: "" (the bucket's
	// default), "AES256" (SSE-S3) or "aws:kms" (SSE-KMS, with KMSKeyID, or
	// the account's default key).
	SSE      string
	KMSKeyID string
	// MaxAttempts is how often a request is tried in all, with jittered
	// exponential backoff up to MaxBackoff between tries.
	MaxAttempts int
	MaxBackoff  time.Duration
	// A Put of more than PartSize bytes is a multipart upload of parts of
	// PartSize bytes (more if the object would need more than 10,000), of
	// which Concurrency upload at once. Memory use is about
	// PartSize*Concurrency per Put; nothing else buffers a whole object.
	PartSize    int64
	Concurrency int
}

// DefaultConfig returns the defaults, for a bucket still to be named.
func DefaultConfig() Config {
	return Config{
		MaxAttempts: 8,
		MaxBackoff:  5 * time.Second,
		PartSize:    16 << 20,
		Concurrency: 4,
	}
}

// minPartSize is S3's smallest part size (but for the last part).
const minPartSize = 5 << 20

// maxParts is S3's largest number of parts in a multipart upload.
const maxParts = 10000

// Validate reports every problem with c at once.
func (c *Config) Validate() error {
	var errs []error
	if c.Bucket == "" {
		errs = append(errs, errors.New("bucket is not set"))
	}
	if c.Endpoint != "" {
		if u, err := url.Parse(c.Endpoint); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			errs = append(errs, fmt.Errorf("endpoint %q is not an http(s) URL", c.Endpoint))
		}
	}
	if (c.AccessKey == "") != (c.SecretKey == "") {
		errs = append(errs, errors.New("access key and secret key must be set together"))
	}
	switch c.SSE {
	case "", string(types.ServerSideEncryptionAes256), string(types.ServerSideEncryptionAwsKms):
	default:
		errs = append(errs, fmt.Errorf("sse %q is not one of \"\", \"AES256\", \"aws:kms\"", c.SSE))
	}
	if c.KMSKeyID != "" && c.SSE != string(types.ServerSideEncryptionAwsKms) {
		errs = append(errs, errors.New("kms key id needs sse \"aws:kms\""))
	}
	if c.MaxAttempts < 1 {
		errs = append(errs, fmt.Errorf("max attempts %d is below 1", c.MaxAttempts))
	}
	if c.MaxBackoff < 0 {
		errs = append(errs, fmt.Errorf("max backoff %v is negative", c.MaxBackoff))
	}
	if c.PartSize < minPartSize {
		errs = append(errs, fmt.Errorf("part size %d is below S3's minimum of %d", c.PartSize, minPartSize))
	}
	if c.Concurrency < 1 {
		errs = append(errs, fmt.Errorf("concurrency %d is below 1", c.Concurrency))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("s3 config: %w", err)
	}
	return nil
}

// Store keeps objects in an S3 bucket (or MinIO, or any S3-compatible
// service) through aws-sdk-go-v2.
//
// Conditional puts use If-None-Match: * and If-Match: <etag>; a 412
// Precondition Failed or 409 ConditionalRequestConflict is snapshot.ErrPrecondition.
// A conditional put the SDK retried after its first try landed (the reply
// was lost) fails with snapshot.ErrPrecondition although its bytes are in place; the
// catalog update loop then reads them back and runs its function again, so
// update functions must see when their change is already there. Every request is retried by the SDK's
// standard retryer with jittered exponential backoff and no client-side
// retry quota, so an outage of a few seconds is ridden out.
type Store struct {
	client *s3.Client
	cfg    Config
	prefix string // "" or ends in "/"
}

var _ snapshot.Store = (*Store)(nil)

// New returns a store on cfg.Bucket. It makes no request; see
// EnsureBucket.
func New(ctx context.Context, cfg Config) (*Store, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	opts := []func(*config.LoadOptions) error{
		config.WithRetryer(func() aws.Retryer {
			return retry.NewStandard(func(o *retry.StandardOptions) {
				o.MaxAttempts = cfg.MaxAttempts
				if cfg.MaxBackoff > 0 {
					o.MaxBackoff = cfg.MaxBackoff
				}
				// The default token bucket stops retrying after a burst
				// of failures, which is exactly when an outage needs it.
				o.RateLimiter = ratelimit.None
			})
		}),
	}
	if cfg.Region != "" {
		opts = append(opts, config.WithRegion(cfg.Region))
	}
	if cfg.AccessKey != "" {
		opts = append(opts, config.WithCredentialsProvider(
			credentials.NewStaticCredentialsProvider(cfg.AccessKey, cfg.SecretKey, cfg.SessionToken)))
	}
	awsCfg, err := config.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("s3 config: %w", err)
	}
	if awsCfg.Region == "" {
		awsCfg.Region = "us-east-1"
	}
	client := s3.NewFromConfig(awsCfg, func(o *s3.Options) {
		if cfg.Endpoint != "" {
			o.BaseEndpoint = aws.String(cfg.Endpoint)
		}
		o.UsePathStyle = cfg.PathStyle
		// Objects are checksummed with CRC-32C on upload; a reply without
		// a checksum (a ranged get, a multipart object) is normal.
		o.DisableLogOutputChecksumValidationSkipped = true
	})
	prefix := strings.TrimSuffix(cfg.Prefix, "/")
	if prefix != "" {
		prefix += "/"
	}
	return &Store{client: client, cfg: cfg, prefix: prefix}, nil
}

// Client is the underlying SDK client, for tools and tests.
func (s *Store) Client() *s3.Client { return s.client }

// Bucket is the store's bucket.
func (s *Store) Bucket() string { return s.cfg.Bucket }

// EnsureBucket creates the bucket if it does not exist (for the local
// stack and tests; production buckets are made by infrastructure code).
func (s *Store) EnsureBucket(ctx context.Context) error {
	_, err := s.client.HeadBucket(ctx, &s3.HeadBucketInput{Bucket: &s.cfg.Bucket})
	if err == nil {
		return nil
	}
	if status(err) != http.StatusNotFound {
		return fmt.Errorf("head bucket %s: %w", s.cfg.Bucket, err)
	}
	_, err = s.client.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: &s.cfg.Bucket})
	var owned *types.BucketAlreadyOwnedByYou
	if err != nil && !errors.As(err, &owned) {
		return fmt.Errorf("create bucket %s: %w", s.cfg.Bucket, err)
	}
	return nil
}

func (s *Store) key(key string) (string, error) {
	if key == "" || strings.HasPrefix(key, "/") || strings.HasSuffix(key, "/") {
		return "", fmt.Errorf("invalid object key %q", key)
	}
	return s.prefix + key, nil
}

func (s *Store) info(key string, size int64, etag *string, modified *time.Time) snapshot.ObjectInfo {
	return snapshot.ObjectInfo{Key: key, Size: size, ETag: aws.ToString(etag), Modified: aws.ToTime(modified)}
}

func (s *Store) sse() (types.ServerSideEncryption, *string) {
	var kms *string
	if s.cfg.KMSKeyID != "" {
		kms = aws.String(s.cfg.KMSKeyID)
	}
	return types.ServerSideEncryption(s.cfg.SSE), kms
}

// Put implements snapshot.Store. Up to PartSize bytes go in one request; more go in
// a multipart upload, streamed from body part by part.
func (s *Store) Put(ctx context.Context, key string, body io.Reader, size int64) (snapshot.ObjectInfo, error) {
	k, err := s.key(key)
	if err != nil {
		return snapshot.ObjectInfo{}, err
	}
	if size < 0 {
		return snapshot.ObjectInfo{}, fmt.Errorf("put %s: negative size %d", key, size)
	}
	if size > s.cfg.PartSize {
		if err := s.putMultipart(ctx, k, body, size); err != nil {
			return snapshot.ObjectInfo{}, fmt.Errorf("put %s: %w", key, err)
		}
		return s.Head(ctx, key)
	}
	buf, err := readFull(body, size)
	if err != nil {
		return snapshot.ObjectInfo{}, fmt.Errorf("put %s: %w", key, err)
	}
	etag, err := s.putObject(ctx, k, buf, snapshot.Condition{})
	if err != nil {
		return snapshot.ObjectInfo{}, fmt.Errorf("put %s: %w", key, mapErr(err))
	}
	return s.afterPut(ctx, key, etag, size)
}

// afterPut describes a freshly written object. S3 returns the ETag but not
// the modification time, so ask for it.
func (s *Store) afterPut(ctx context.Context, key, etag string, size int64) (snapshot.ObjectInfo, error) {
	info, err := s.Head(ctx, key)
	if err != nil || info.ETag != etag {
		// The write landed (and maybe another since); describe ours. Its
		// time is the store's, unknown here: never the local clock's.
		return snapshot.ObjectInfo{Key: key, Size: size, ETag: etag}, nil
	}
	return info, nil
}

// readFull reads exactly size bytes and checks body holds no more.
func readFull(body io.Reader, size int64) ([]byte, error) {
	buf := make([]byte, size)
	if _, err := io.ReadFull(body, buf); err != nil {
		return nil, fmt.Errorf("body is shorter than %d bytes: %w", size, err)
	}
	var one [1]byte
	if n, _ := body.Read(one[:]); n > 0 {
		return nil, fmt.Errorf("body is longer than %d bytes", size)
	}
	return buf, nil
}

func (s *Store) putObject(ctx context.Context, k string, data []byte, cond snapshot.Condition) (string, error) {
	sse, kms := s.sse()
	in := &s3.PutObjectInput{
		Bucket:            &s.cfg.Bucket,
		Key:               &k,
		Body:              bytes.NewReader(data),
		ContentLength:     aws.Int64(int64(len(data))),
		ChecksumAlgorithm: types.ChecksumAlgorithmCrc32c,
	}
	if sse != "" {
		in.ServerSideEncryption = sse
		in.SSEKMSKeyId = kms
	}
	if cond.IfAbsent {
		in.IfNoneMatch = aws.String("*")
	} else if cond.IfMatch != "" {
		in.IfMatch = aws.String(cond.IfMatch)
	}
	out, err := s.client.PutObject(ctx, in)
	if err != nil {
		return "", err
	}
	return aws.ToString(out.ETag), nil
}

// PutIf implements snapshot.Store.
func (s *Store) PutIf(ctx context.Context, key string, data []byte, cond snapshot.Condition) (snapshot.ObjectInfo, error) {
	k, err := s.key(key)
	if err != nil {
		return snapshot.ObjectInfo{}, err
	}
	if cond.IfAbsent == (cond.IfMatch != "") {
		return snapshot.ObjectInfo{}, fmt.Errorf("put %s: condition must set exactly one of IfAbsent and IfMatch", key)
	}
	etag, err := s.putObject(ctx, k, data, cond)
	if err == nil {
		return s.afterPut(ctx, key, etag, int64(len(data)))
	}
	err = mapErr(err)
	if errors.Is(err, snapshot.ErrNotFound) && cond.IfMatch != "" {
		// MinIO answers If-Match on a missing object with NoSuchKey.
		err = fmt.Errorf("%w (%v)", snapshot.ErrPrecondition, err)
	}
	return snapshot.ObjectInfo{}, fmt.Errorf("put %s: %w", key, err)
}

// putMultipart uploads size bytes from body in parts, Concurrency at a
// time, and aborts the upload on failure (a bucket lifecycle rule should
// also abort incomplete uploads, for processes that die mid-way).
func (s *Store) putMultipart(ctx context.Context, k string, body io.Reader, size int64) (err error) {
	partSize := max(s.cfg.PartSize, (size+maxParts-1)/maxParts)
	sse, kms := s.sse()
	create := &s3.CreateMultipartUploadInput{
		Bucket:            &s.cfg.Bucket,
		Key:               &k,
		ChecksumAlgorithm: types.ChecksumAlgorithmCrc32c,
	}
	if sse != "" {
		create.ServerSideEncryption = sse
		create.SSEKMSKeyId = kms
	}
	up, err := s.client.CreateMultipartUpload(ctx, create)
	if err != nil {
		return mapErr(err)
	}
	defer func() {
		if err != nil {
			actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
			defer cancel()
			_, _ = s.client.AbortMultipartUpload(actx, &s3.AbortMultipartUploadInput{
				Bucket: &s.cfg.Bucket, Key: &k, UploadId: up.UploadId,
			})
		}
	}()

	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	nparts := int((size + partSize - 1) / partSize)
	parts := make([]types.CompletedPart, nparts)
	sem := make(chan []byte, s.cfg.Concurrency) // free part buffers
	for range s.cfg.Concurrency {
		sem <- nil
	}
	var wg sync.WaitGroup
	var once sync.Once
	var firstErr error
	fail := func(e error) {
		once.Do(func() { firstErr = e; cancel(e) })
	}
	for i := range nparts {
		var buf []byte
		select {
		case buf = <-sem:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			break
		}
		n := min(partSize, size-int64(i)*partSize)
		if int64(cap(buf)) < n {
			buf = make([]byte, partSize)
		}
		buf = buf[:n]
		if _, rerr := io.ReadFull(body, buf); rerr != nil {
			fail(fmt.Errorf("body is shorter than %d bytes: %w", size, rerr))
			break
		}
		wg.Add(1)
		go func(num int32, buf []byte) {
			defer wg.Done()
			defer func() { sem <- buf }()
			out, perr := s.client.UploadPart(ctx, &s3.UploadPartInput{
				Bucket:            &s.cfg.Bucket,
				Key:               &k,
				UploadId:          up.UploadId,
				PartNumber:        &num,
				Body:              bytes.NewReader(buf),
				ContentLength:     aws.Int64(int64(len(buf))),
				ChecksumAlgorithm: types.ChecksumAlgorithmCrc32c,
			})
			if perr != nil {
				fail(fmt.Errorf("part %d: %w", num, mapErr(perr)))
				return
			}
			parts[num-1] = types.CompletedPart{PartNumber: &num, ETag: out.ETag, ChecksumCRC32C: out.ChecksumCRC32C}
		}(int32(i+1), buf)
	}
	wg.Wait()
	if firstErr != nil {
		return firstErr
	}
	if err := context.Cause(ctx); err != nil {
		return err
	}
	var one [1]byte
	if n, _ := body.Read(one[:]); n > 0 {
		return fmt.Errorf("body is longer than %d bytes", size)
	}
	_, err = s.client.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{
		Bucket:          &s.cfg.Bucket,
		Key:             &k,
		UploadId:        up.UploadId,
		MultipartUpload: &types.CompletedMultipartUpload{Parts: parts},
	})
	return mapErr(err)
}

// Get implements snapshot.Store. The size in the returned snapshot.ObjectInfo is the whole
// object's, from Content-Range.
func (s *Store) Get(ctx context.Context, key string, off, n int64) (io.ReadCloser, snapshot.ObjectInfo, error) {
	k, err := s.key(key)
	if err != nil {
		return nil, snapshot.ObjectInfo{}, err
	}
	if off < 0 {
		return nil, snapshot.ObjectInfo{}, fmt.Errorf("get %s: negative offset %d", key, off)
	}
	if n == 0 {
		// HTTP cannot ask for no bytes.
		info, err := s.Head(ctx, key)
		if err != nil {
			return nil, info, err
		}
		if off > info.Size {
			return nil, info, fmt.Errorf("get %s: offset %d outside object of %d bytes", key, off, info.Size)
		}
		return io.NopCloser(bytes.NewReader(nil)), info, nil
	}
	in := &s3.GetObjectInput{Bucket: &s.cfg.Bucket, Key: &k}
	ranged := off > 0 || n > 0
	if n > 0 {
		in.Range = aws.String(fmt.Sprintf("bytes=%d-%d", off, off+n-1))
	} else if off > 0 {
		in.Range = aws.String(fmt.Sprintf("bytes=%d-", off))
	}
	out, err := s.client.GetObject(ctx, in)
	if err != nil {
		if status(err) == http.StatusRequestedRangeNotSatisfiable {
			// Reading from the very end is an empty read, as for a file.
			info, herr := s.Head(ctx, key)
			if herr != nil {
				return nil, info, herr
			}
			if off == info.Size {
				return io.NopCloser(bytes.NewReader(nil)), info, nil
			}
			return nil, info, fmt.Errorf("get %s: offset %d outside object of %d bytes", key, off, info.Size)
		}
		return nil, snapshot.ObjectInfo{}, fmt.Errorf("get %s: %w", key, mapErr(err))
	}
	info := s.info(key, aws.ToInt64(out.ContentLength), out.ETag, out.LastModified)
	if ranged {
		total, ok := totalFromContentRange(aws.ToString(out.ContentRange))
		if !ok {
			out.Body.Close()
			return nil, snapshot.ObjectInfo{}, fmt.Errorf("get %s: bad Content-Range %q", key, aws.ToString(out.ContentRange))
		}
		info.Size = total
	}
	return out.Body, info, nil
}

// totalFromContentRange parses "bytes 0-9/100" into 100.
func totalFromContentRange(cr string) (int64, bool) {
	i := strings.LastIndexByte(cr, '/')
	if i < 0 || !strings.HasPrefix(cr, "bytes ") {
		return 0, false
	}
	total, err := strconv.ParseInt(cr[i+1:], 10, 64)
	return total, err == nil
}

// Head implements snapshot.Store.
func (s *Store) Head(ctx context.Context, key string) (snapshot.ObjectInfo, error) {
	k, err := s.key(key)
	if err != nil {
		return snapshot.ObjectInfo{}, err
	}
	out, err := s.client.HeadObject(ctx, &s3.HeadObjectInput{Bucket: &s.cfg.Bucket, Key: &k})
	if err != nil {
		return snapshot.ObjectInfo{}, fmt.Errorf("head %s: %w", key, mapErr(err))
	}
	return s.info(key, aws.ToInt64(out.ContentLength), out.ETag, out.LastModified), nil
}

// Delete implements snapshot.Store.
func (s *Store) Delete(ctx context.Context, key string) error {
	k, err := s.key(key)
	if err != nil {
		return err
	}
	_, err = s.client.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: &s.cfg.Bucket, Key: &k})
	if err != nil && !errors.Is(mapErr(err), snapshot.ErrNotFound) {
		return fmt.Errorf("delete %s: %w", key, mapErr(err))
	}
	return nil
}

// List implements snapshot.Store. S3 lists keys in byte order, which is key order.
func (s *Store) List(ctx context.Context, prefix string, fn func(snapshot.ObjectInfo) error) error {
	p := s.paginator(prefix)
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return fmt.Errorf("list %s: %w", prefix, mapErr(err))
		}
		for _, o := range page.Contents {
			key := strings.TrimPrefix(aws.ToString(o.Key), s.prefix)
			if err := fn(s.info(key, aws.ToInt64(o.Size), o.ETag, o.LastModified)); err != nil {
				return err
			}
		}
	}
	return nil
}

func (s *Store) paginator(prefix string) *s3.ListObjectsV2Paginator {
	return s3.NewListObjectsV2Paginator(s.client, &s3.ListObjectsV2Input{
		Bucket: &s.cfg.Bucket,
		Prefix: aws.String(s.prefix + prefix),
	})
}

// status is an error's HTTP status, 0 if it has none.
func status(err error) int {
	var re *awshttp.ResponseError
	if errors.As(err, &re) && re.Response != nil {
		return re.Response.StatusCode
	}
	return 0
}

// mapErr turns S3's "not found" and "precondition failed" into snapshot.ErrNotFound
// and snapshot.ErrPrecondition. A missing bucket is not snapshot.ErrNotFound: an empty answer
// there would make a misconfigured store look empty.
func mapErr(err error) error {
	if err == nil {
		return nil
	}
	var api smithy.APIError
	code := ""
	if errors.As(err, &api) {
		code = api.ErrorCode()
	}
	switch {
	case code == "NoSuchBucket":
		return err
	case code == "NoSuchKey", code == "NotFound", status(err) == http.StatusNotFound:
		return fmt.Errorf("%w (%v)", snapshot.ErrNotFound, err)
	case code == "PreconditionFailed", code == "ConditionalRequestConflict",
		status(err) == http.StatusPreconditionFailed:
		return fmt.Errorf("%w (%v)", snapshot.ErrPrecondition, err)
	}
	return err
}
