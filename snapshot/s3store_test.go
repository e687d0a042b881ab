package snapshot_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/akutan/akutan/snapshot"
	"github.com/akutan/akutan/snapshot/miniotest"
	"github.com/akutan/akutan/snapshot/s3store"
)

func TestS3Config(t *testing.T) {
	cfg := s3store.DefaultConfig()
	cfg.Endpoint = "ftp://x"
	cfg.AccessKey = "only-one"
	cfg.SSE = "rot13"
	cfg.KMSKeyID = "k"
	cfg.MaxAttempts = 0
	cfg.PartSize = 1
	err := cfg.Validate()
	for _, want := range []string{"bucket", "endpoint", "secret key", "sse", "kms key id", "max attempts", "part size"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("validate: %v, want it to report %s", err, want)
		}
	}
	cfg = s3store.DefaultConfig()
	cfg.Bucket = "b"
	if err := cfg.Validate(); err != nil {
		t.Errorf("defaults with a bucket: %v", err)
	}
}

func TestS3Specifics(t *testing.T) {
	srv := miniotest.Start(t)
	ctx := context.Background()

	t.Run("Prefix", func(t *testing.T) {
		root, inner := srv.Store(t, ""), srv.Store(t, "cluster-9/")
		put(t, inner, "k", []byte("x"))
		if b, _ := get(t, root, "cluster-9/k", 0, -1); string(b) != "x" {
			t.Errorf("root store sees %q", b)
		}
		if got := listKeys(t, inner, ""); !equal(got, []string{"k"}) {
			t.Errorf("list %q", got)
		}
	})

	t.Run("SSE", func(t *testing.T) {
		for _, c := range []struct{ sse, key string }{{"AES256", ""}, {"aws:kms", ""}, {"aws:kms", miniotest.KMSKeyName}} {
			cfg := srv.Config(testPrefix(t))
			cfg.SSE, cfg.KMSKeyID = c.sse, c.key
			cfg.PartSize = 5 << 20
			s, err := s3store.New(ctx, cfg)
			if err != nil {
				t.Fatal(err)
			}
			for _, size := range []int64{100, 12 << 20} { // one request, and multipart
				if _, err := s.Put(ctx, "secret", &patternReader{n: size}, size); err != nil {
					t.Fatalf("%s %q: put %d bytes: %v", c.sse, c.key, size, err)
				}
				b, _ := get(t, s, "secret", size-10, -1)
				for i := range b {
					if b[i] != patternByte(size-10+int64(i)) {
						t.Fatalf("%s: wrong bytes read back", c.sse)
					}
				}
				out, err := s.Client().HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(s.Bucket()), Key: aws.String(cfg.Prefix + "/secret")})
				if err != nil {
					t.Fatal(err)
				}
				if string(out.ServerSideEncryption) != c.sse {
					t.Errorf("%s %q: object is encrypted with %q", c.sse, c.key, out.ServerSideEncryption)
				}
			}
			if _, err := s.PutIf(ctx, "cat", []byte("v1"), snapshot.Condition{IfAbsent: true}); err != nil {
				t.Errorf("%s: conditional put: %v", c.sse, err)
			}
		}
	})

	t.Run("EnsureBucket", func(t *testing.T) {
		cfg := srv.Config("")
		cfg.Bucket = "another-bucket"
		s, err := s3store.New(ctx, cfg)
		if err != nil {
			t.Fatal(err)
		}
		// A missing bucket is an error, never an empty store.
		if _, _, err := s.Get(ctx, snapshot.LogCatalogKey, 0, -1); err == nil || errors.Is(err, snapshot.ErrNotFound) {
			t.Errorf("get from a missing bucket: %v", err)
		}
		if _, _, err := snapshot.LoadLogCatalog(ctx, s); err == nil {
			t.Error("loaded a catalog from a missing bucket")
		}
		for range 2 {
			if err := s.EnsureBucket(ctx); err != nil {
				t.Fatal(err)
			}
		}
		put(t, s, "k", []byte("x"))
	})

	t.Run("OpenStore", func(t *testing.T) {
		t.Setenv("AWS_ACCESS_KEY_ID", srv.AccessKey)
		t.Setenv("AWS_SECRET_ACCESS_KEY", srv.SecretKey)
		t.Setenv("AWS_CONFIG_FILE", "/nonexistent")
		t.Setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")
		prefix := testPrefix(t)
		s, err := snapshot.OpenStore(ctx, srv.URL(prefix))
		if err != nil {
			t.Fatal(err)
		}
		put(t, s, "k", []byte("via url"))
		if b, _ := get(t, srv.Store(t, prefix), "k", 0, -1); string(b) != "via url" {
			t.Errorf("read %q", b)
		}
		dir := t.TempDir()
		for _, u := range []string{dir, "file://" + dir} {
			s, err := snapshot.OpenStore(ctx, u)
			if err != nil {
				t.Fatalf("%s: %v", u, err)
			}
			if _, ok := s.(*snapshot.DirStore); !ok {
				t.Errorf("%s opened a %T", u, s)
			}
		}
		for _, bad := range []string{"", "gs://b/p", "file://host/dir", "s3:///p",
			"s3://b/p?path_style=maybe", "s3://b/p?colour=red", "s3://b/p?sse=rot13"} {
			if _, err := snapshot.OpenStore(ctx, bad); err == nil {
				t.Errorf("opened %q", bad)
			}
		}
	})

	t.Run("Outage", func(t *testing.T) {
		s := srv.Store(t, testPrefix(t))
		put(t, s, "before", []byte("x"))
		srv.Stop()
		short, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
		_, err := s.Head(short, "before")
		cancel()
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("head while down: %v, want the deadline", err)
		}
		done := make(chan error, 1)
		go func() {
			_, err := snapshot.UpdateLogCatalog(ctx, s, func(c *snapshot.LogCatalog) error {
				return c.Add(snapshot.SegmentRef{First: 1, Last: 2, Key: snapshot.SegmentKey(1, 2)})
			})
			done <- err
		}()
		time.Sleep(time.Second)
		srv.Restart()
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("update across an outage: %v", err)
			}
		case <-time.After(60 * time.Second):
			t.Fatal("update did not finish after the server came back")
		}
		if b, _ := get(t, s, "before", 0, -1); string(b) != "x" {
			t.Errorf("object lost in the restart: %q", b)
		}
		if cat, _, err := snapshot.LoadLogCatalog(ctx, s); err != nil || cat.ArchivedThrough() != 2 {
			t.Errorf("catalog after the outage: %+v %v", cat, err)
		}
	})

	t.Run("TornMultipart", func(t *testing.T) {
		// A multipart upload that fails is aborted: no object, no parts.
		s := srv.Store(t, testPrefix(t))
		const size = 40 << 20
		if _, err := s.Put(ctx, "torn", &patternReader{n: size - 1}, size); err == nil {
			t.Fatal("put of a short body succeeded")
		}
		if _, err := s.Head(ctx, "torn"); !errors.Is(err, snapshot.ErrNotFound) {
			t.Errorf("torn upload left an object: %v", err)
		}
		out, err := s.Client().ListMultipartUploads(ctx, &s3.ListMultipartUploadsInput{Bucket: aws.String(s.Bucket())})
		if err != nil {
			t.Fatal(err)
		}
		for _, u := range out.Uploads {
			if strings.HasSuffix(aws.ToString(u.Key), "/torn") {
				t.Errorf("upload %s not aborted", aws.ToString(u.UploadId))
			}
		}
	})
}
