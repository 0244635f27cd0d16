package rotate

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	"github.com/tokenward/tokenward"
)

// Exec is the "exec" rotator: it runs a configured program for each step,
// with a JSON ExecRequest on stdin. For create, the program prints the new
// value on stdout (one trailing newline is dropped). Values travel only on
// stdin and stdout: never on the argv, in the environment, or in errors
// (stderr is discarded for that reason). There is no shell: the argv is
// run as given. A non-zero exit fails the step.
//
// Config: command (an absolute path), args (optional JSON array of
// strings), timeout (optional, default 30s, at most 10m).
type Exec struct {
	// Env is the program's whole environment (default: PATH only), so
	// tokenward's own environment does not leak into it.
	Env []string
}

// ExecRequest is the JSON the program reads on stdin.
type ExecRequest struct {
	Action     string `json:"action"` // create, set, test, revoke, discard
	RotationID string `json:"rotation_id"`
	Secret     string `json:"secret"`
	// Current is CURRENT when the rotation started (for revoke: the value
	// to revoke). Pending is the new value (empty for create).
	Current string `json:"current,omitempty"`
	Pending string `json:"pending,omitempty"`
}

const maxExecOutput = 64 << 10

type execConfig struct {
	argv    []string
	timeout time.Duration
}

// Validate implements Rotator.
func (e *Exec) Validate(config map[string]string) error {
	_, err := parseExecConfig(config)
	return err
}

func parseExecConfig(c map[string]string) (*execConfig, error) {
	for k := range c {
		switch k {
		case "command", "args", "timeout":
		default:
			return nil, errInvalid("exec rotator: unknown config key %q", tokenward.Printable(k))
		}
	}
	cmd := c["command"]
	if cmd == "" || !filepath.IsAbs(cmd) {
		return nil, errInvalid("exec rotator: command must be an absolute path")
	}
	ec := &execConfig{argv: []string{cmd}, timeout: 30 * time.Second}
	if a := c["args"]; a != "" {
		var args []string
		if err := json.Unmarshal([]byte(a), &args); err != nil {
			return nil, errInvalid("exec rotator: args must be a JSON array of strings")
		}
		ec.argv = append(ec.argv, args...)
	}
	if t := c["timeout"]; t != "" {
		d, err := ParseDuration(t)
		if err != nil || d <= 0 || d > 10*time.Minute {
			return nil, errInvalid("exec rotator: timeout %q: want more than 0 and at most 10m", tokenward.Printable(t))
		}
		ec.timeout = d
	}
	return ec, nil
}

func (e *Exec) run(ctx context.Context, req *Request, action string) ([]byte, error) {
	ec, err := parseExecConfig(req.Config)
	if err != nil {
		return nil, err
	}
	in, err := json.Marshal(ExecRequest{Action: action, RotationID: req.RotationID, Secret: req.Path, // #nosec G117 -- Secret is the secret's path (a name), not its value
		Current: string(req.Current), Pending: string(req.Pending)})
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, ec.timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, ec.argv[0], ec.argv[1:]...) // #nosec G204 -- the exec rotator runs the command an admin configured; argv, no shell
	cmd.Stdin = bytes.NewReader(in)
	var out limitedBuffer
	cmd.Stdout = &out
	cmd.Stderr = io.Discard
	cmd.Env = e.Env
	if cmd.Env == nil {
		cmd.Env = []string{"PATH=" + os.Getenv("PATH")}
	}
	cmd.WaitDelay = time.Second // don't hang on grandchildren holding stdout
	killGroupOnCancel(cmd)
	err = cmd.Run()
	switch {
	case ctx.Err() != nil:
		return nil, fmt.Errorf("exec %s: timed out after %s", action, ec.timeout)
	case err != nil:
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return nil, fmt.Errorf("exec %s: %s exited with status %d", action, filepath.Base(ec.argv[0]), ee.ExitCode())
		}
		return nil, fmt.Errorf("exec %s: cannot run %s", action, filepath.Base(ec.argv[0]))
	case out.over:
		return nil, fmt.Errorf("exec %s: output is longer than %d bytes", action, maxExecOutput)
	}
	return out.Bytes(), nil
}

// limitedBuffer keeps the first maxExecOutput bytes and notes overflow.
type limitedBuffer struct {
	bytes.Buffer
	over bool
}

func (b *limitedBuffer) Write(p []byte) (int, error) {
	if room := maxExecOutput - b.Len(); len(p) > room {
		b.over = true
		b.Buffer.Write(p[:max(room, 0)])
		return len(p), nil
	}
	return b.Buffer.Write(p)
}

// Create implements Rotator.
func (e *Exec) Create(ctx context.Context, req *Request) ([]byte, error) {
	out, err := e.run(ctx, req, "create")
	if err != nil {
		return nil, err
	}
	out = bytes.TrimSuffix(out, []byte("\n"))
	out = bytes.TrimSuffix(out, []byte("\r"))
	if len(out) == 0 {
		return nil, errors.New("exec create: the program printed no value")
	}
	return out, nil
}

// Set implements Rotator.
func (e *Exec) Set(ctx context.Context, req *Request) error {
	_, err := e.run(ctx, req, "set")
	return err
}

// Test implements Rotator.
func (e *Exec) Test(ctx context.Context, req *Request) error {
	_, err := e.run(ctx, req, "test")
	return err
}

// Revoke implements Rotator.
func (e *Exec) Revoke(ctx context.Context, req *Request) error {
	_, err := e.run(ctx, req, "revoke")
	return err
}

// Discard implements Discarder.
func (e *Exec) Discard(ctx context.Context, req *Request) error {
	_, err := e.run(ctx, req, "discard")
	return err
}
