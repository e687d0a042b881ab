package cluster

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os/exec"
	"strconv"
	"strings"

	"github.com/akutan/akutan/infra/topology"
)

// Driver starts and stops the servers of one deployment, by the names the
// topology gives them. Every method is idempotent: starting a running
// server, stopping a stopped one or wiping an empty one does nothing, so a
// procedure interrupted anywhere can be run again.
type Driver interface {
	// Start starts the server as the deployment always does; a log voter
	// with an empty disk bootstraps only with the others (the first start).
	Start(ctx context.Context, name string) error
	// Join starts a log voter on an empty disk so that it waits to be
	// added as a voter (never bootstrapping a log of its own).
	Join(ctx context.Context, name string) error
	// Stop stops the server gracefully (and forcibly after a while).
	Stop(ctx context.Context, name string) error
	// Wipe deletes a stopped server's state; a view started afterwards
	// boots from the bucket, a log voter must Join.
	Wipe(ctx context.Context, name string) error
	// Running reports whether the server's process (or instance) runs.
	Running(ctx context.Context, name string) (bool, error)
	// Temporary is the extra server StartTemporary starts like s: a view of
	// the same DC, space and range, or an API server of the same DC, with
	// its own name, address and state.
	Temporary(s topology.Server) topology.Server
	// StartTemporary starts tmp (from Temporary) like s.
	StartTemporary(ctx context.Context, tmp, s topology.Server) error
	// PublishView adds the view at addr to dc's API servers' views, or
	// with add false retires it from them; they notice within a second or
	// two (the local stack's views file, a DNS record or a target group in
	// the cloud).
	PublishView(ctx context.Context, dc, addr string, add bool) error
}

// BinaryDriver is a Driver that can run a server on another build (akutan
// cluster upgrade): the local stack records a binaries directory per
// server, the cloud a launch template's release version.
type BinaryDriver interface {
	Driver
	// UseBinaries makes every later Start (or StartTemporary, for a
	// temporary server's name) of name run the binaries in dir; a running
	// server keeps its own until restarted. Idempotent.
	UseBinaries(ctx context.Context, name, dir string) error
}

// LocalDriver drives the local stack through localstack/ctl.sh, which
// reads the stack's environment (AKUTAN_STACK_DIR, AKUTAN_BASE_PORT, ...)
// from the process's.
type LocalDriver struct {
	// Script is the path of ctl.sh.
	Script string
	// Out receives what the script prints; nil discards it.
	Out io.Writer
	// Env, when set, replaces the process's environment.
	Env []string
}

var _ BinaryDriver = (*LocalDriver)(nil)

// TemporaryPortOffset places a temporary server of the local stack at its
// original's port plus this: the derived layout (infra/topology) leaves
// those ports free while a DC has fewer than 50 views and 5 API servers.
const TemporaryPortOffset = 50

func (d *LocalDriver) run(ctx context.Context, args ...string) error {
	cmd := exec.CommandContext(ctx, "bash", append([]string{d.Script}, args...)...)
	if d.Env != nil {
		cmd.Env = d.Env
	}
	var buf bytes.Buffer
	cmd.Stdout, cmd.Stderr = &buf, &buf
	err := cmd.Run()
	if d.Out != nil {
		d.Out.Write(indent(buf.Bytes()))
	}
	if err != nil {
		return fmt.Errorf("ctl.sh %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(buf.String()))
	}
	return nil
}

func indent(b []byte) []byte {
	if len(b) == 0 {
		return nil
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	return []byte("    " + strings.Join(lines, "\n    ") + "\n")
}

// Start runs ctl.sh start NAME.
func (d *LocalDriver) Start(ctx context.Context, name string) error { return d.run(ctx, "start", name) }

// Join runs ctl.sh join NAME.
func (d *LocalDriver) Join(ctx context.Context, name string) error { return d.run(ctx, "join", name) }

// Stop runs ctl.sh stop NAME.
func (d *LocalDriver) Stop(ctx context.Context, name string) error { return d.run(ctx, "stop", name) }

// Wipe runs ctl.sh wipe NAME.
func (d *LocalDriver) Wipe(ctx context.Context, name string) error { return d.run(ctx, "wipe", name) }

// Running runs ctl.sh running NAME: exit 0 runs, 1 does not.
func (d *LocalDriver) Running(ctx context.Context, name string) (bool, error) {
	err := d.run(ctx, "running", name)
	var ee *exec.ExitError
	switch {
	case err == nil:
		return true, nil
	case errors.As(err, &ee) && ee.ExitCode() == 1:
		return false, nil
	}
	return false, err
}

// Temporary is s named NAME-tmp at s's port + TemporaryPortOffset.
func (d *LocalDriver) Temporary(s topology.Server) topology.Server {
	tmp := s
	tmp.Name = s.Name + "-tmp"
	host, port, err := net.SplitHostPort(s.Addr)
	if p, perr := strconv.Atoi(port); err == nil && perr == nil {
		tmp.Addr = net.JoinHostPort(host, strconv.Itoa(p+TemporaryPortOffset))
	}
	return tmp
}

// StartTemporary runs ctl.sh start-extra TMP NAME ADDR.
func (d *LocalDriver) StartTemporary(ctx context.Context, tmp, s topology.Server) error {
	return d.run(ctx, "start-extra", tmp.Name, s.Name, tmp.Addr)
}

// UseBinaries runs ctl.sh bin NAME DIR.
func (d *LocalDriver) UseBinaries(ctx context.Context, name, dir string) error {
	return d.run(ctx, "bin", name, dir)
}

// PublishView runs ctl.sh views add|remove DC ADDR.
func (d *LocalDriver) PublishView(ctx context.Context, dc, addr string, add bool) error {
	op := "remove"
	if add {
		op = "add"
	}
	return d.run(ctx, "views", op, dc, addr)
}
