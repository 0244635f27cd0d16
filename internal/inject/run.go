package inject

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"os"
	"os/exec"
	"os/signal"
	"syscall"
	"time"

	"github.com/tokenward/tokenward"
)

// Exit codes for a command that could not be started, as a shell gives.
const (
	ExitNotFound      = 127
	ExitNotExecutable = 126
)

// ForwardedSignals are passed on to the child.
var ForwardedSignals = []os.Signal{syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP, syscall.SIGQUIT}

// RunConfig describes one tokenward run.
type RunConfig struct {
	Command []string          // the program and its arguments, run directly (no shell)
	Secrets map[string]string // name → value, as fetched
	Env     EnvOptions
	BaseEnv []string // the inherited environment; nil means os.Environ()
	Dir     string   // working directory; "" means the current one

	Stdin          io.Reader // nil means no input
	Stdout, Stderr io.Writer // nil means discard

	NoMask     bool // pass output through unmasked
	MinMaskLen int  // values shorter than this are not masked; 0 means DefaultMinMaskLen

	// Masks are more values masked in the output, name → value (the name
	// is for warnings), that are not secrets: credentials the caller set
	// itself in BaseEnv, such as run --gateway's token. They stay masked
	// across Watch restarts.
	Masks map[string]string

	MountPath   string // if set, the injected secrets are also written here while the child runs
	MountFormat Format // FormatDotenv (default) or FormatJSON

	// Watch, if set, delivers a new set of secrets whenever one changes or
	// rotates; the child is stopped (StopSignal, then SIGKILL after
	// StopTimeout) and started again with them.
	Watch       <-chan map[string]string
	StopSignal  syscall.Signal // default SIGTERM
	StopTimeout time.Duration  // default 10s

	// Signals, if set, replaces the process's own SIGINT, SIGTERM, SIGHUP and
	// SIGQUIT as the source of signals to forward.
	Signals <-chan os.Signal

	// Warn receives warnings (never holding a value); nil discards them.
	Warn func(msg string)
}

// StartError is returned when the command cannot be started; ExitCode is 127
// (not found) or 126 (not executable).
type StartError struct {
	Command  string
	ExitCode int
	Err      error
}

func (e *StartError) Error() string {
	what := "cannot be run"
	if e.ExitCode == ExitNotFound {
		what = "not found"
	}
	return fmt.Sprintf("command %q %s: %v", printable(e.Command), what, e.Err)
}

func (e *StartError) Unwrap() error { return e.Err }

// Run runs cfg.Command with the secrets in its environment and returns its
// exit code: the child's own, 128+signal when a signal ended it, or 127/126
// (with a *StartError) when it could not be started. The mount file, if any,
// exists only while the child runs.
//
// Other errors: a bad configuration returns 0 and an error before anything
// starts (the CLI should exit non-zero itself); ctx cancelled returns the
// child's code with ctx.Err(); a failure writing the child's output returns
// the child's code with that error. Neither errors nor warnings hold a value.
func Run(ctx context.Context, cfg RunConfig) (exitCode int, err error) {
	if len(cfg.Command) == 0 {
		return 0, tokenward.Errorf(tokenward.EINVALID, "no command to run")
	}
	if cfg.BaseEnv == nil {
		cfg.BaseEnv = os.Environ()
	}
	if cfg.StopSignal == 0 {
		cfg.StopSignal = syscall.SIGTERM
	}
	if cfg.StopTimeout <= 0 {
		cfg.StopTimeout = 10 * time.Second
	}
	if cfg.MountFormat == "" {
		cfg.MountFormat = FormatDotenv
	}
	if cfg.MountPath != "" && cfg.MountFormat != FormatDotenv && cfg.MountFormat != FormatJSON {
		return 0, tokenward.Errorf(tokenward.EINVALID, "mount format %q: want dotenv or json", printable(string(cfg.MountFormat)))
	}
	warn := cfg.Warn
	if warn == nil {
		warn = func(string) {}
	}
	if cfg.Stdout == nil {
		cfg.Stdout = io.Discard
	}
	if cfg.Stderr == nil {
		cfg.Stderr = io.Discard
	}
	sigs := cfg.Signals
	if sigs == nil {
		ch := make(chan os.Signal, 4)
		signal.Notify(ch, ForwardedSignals...)
		defer signal.Stop(ch)
		sigs = ch
	}

	// Every value ever handed to this run is masked, old ones too after a
	// rotation: the child may still print them.
	maskValues := make(map[string]string, len(cfg.Secrets)+len(cfg.Masks))
	for n, v := range cfg.Masks {
		// A name no secret has, so neither value hides the other.
		maskValues[n+" (set by the run)"] = v
	}
	maps.Copy(maskValues, cfg.Secrets)
	secrets := cfg.Secrets
	gen := 0
	mounted := false
	defer func() {
		if mounted {
			if rerr := os.Remove(cfg.MountPath); rerr != nil && !errors.Is(rerr, fs.ErrNotExist) && err == nil {
				err = fmt.Errorf("remove mount file: %w", rerr)
			}
		}
	}()
	for {
		env, injected, warnings, err := BuildEnv(cfg.BaseEnv, secrets, cfg.Env)
		if err != nil {
			return 0, err
		}
		for _, w := range warnings {
			warn(w)
		}
		if cfg.MountPath != "" {
			data, err := Encode(cfg.MountFormat, injected)
			if err != nil {
				return 0, err
			}
			if err := writeMount(cfg.MountPath, data, mounted); err != nil {
				return 0, err
			}
			mounted = true
		}
		code, restart, err := runOnce(ctx, cfg, env, maskValues, sigs, warn)
		if err != nil || restart == nil {
			return code, err
		}
		warn("secrets changed: restarting the command")
		secrets = restart
		gen++
		for n, v := range restart {
			maskValues[fmt.Sprintf("%s (restart %d)", n, gen)] = v
		}
	}
}

// writeMount creates the mount file, refusing to replace a file that was
// there before the run; on a restart it replaces its own file atomically.
func writeMount(path string, data []byte, ours bool) error {
	if ours {
		return WriteFileAtomic(path, data)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("create mount file: %w", err)
	}
	_, werr := f.Write(data)
	if cerr := f.Close(); werr == nil {
		werr = cerr
	}
	if werr != nil {
		os.Remove(path)
		return fmt.Errorf("write mount file: %w", werr)
	}
	return nil
}

// runOnce starts the child and waits for it, forwarding signals. It returns
// the new secrets when Watch asked for a restart.
func runOnce(ctx context.Context, cfg RunConfig, env []string, maskValues map[string]string, sigs <-chan os.Signal, warn func(string)) (int, map[string]string, error) {
	cmd := exec.Command(cfg.Command[0], cfg.Command[1:]...) // #nosec G204 -- running the user's command is what tokenward run does; no shell is involved
	cmd.Env = env
	cmd.Dir = cfg.Dir
	cmd.Stdin = cfg.Stdin
	cmd.WaitDelay = cfg.StopTimeout
	var closers []io.Closer
	if cfg.NoMask {
		cmd.Stdout, cmd.Stderr = cfg.Stdout, cfg.Stderr
	} else {
		m := NewMasker(maskValues, cfg.MinMaskLen)
		for _, n := range m.ShortNames() {
			warn("not masking " + n + ": its value (or a line of it) is shorter than the minimum mask length")
		}
		// Each stream has its own redactor, so a value split across writes
		// of one stream is still found.
		out, errw := m.NewRedactor(cfg.Stdout), m.NewRedactor(cfg.Stderr)
		cmd.Stdout, cmd.Stderr = out, errw
		closers = append(closers, out, errw)
	}
	if err := cmd.Start(); err != nil {
		return startFailure(cfg.Command[0], err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()

	var restart map[string]string
	var killTimer <-chan time.Time
	stopping := false
	stop := func() {
		if !stopping {
			stopping = true
			cmd.Process.Signal(cfg.StopSignal)
			killTimer = time.After(cfg.StopTimeout)
		}
	}
	ctxDone := ctx.Done()
	for {
		select {
		case werr := <-done:
			var cerr error
			for _, c := range closers {
				if err := c.Close(); err != nil && cerr == nil {
					cerr = err
				}
			}
			code, err := exitStatus(cmd, werr)
			if err == nil && cerr != nil {
				err = fmt.Errorf("write child output: %w", cerr)
			}
			if ctx.Err() != nil && err == nil {
				err = ctx.Err()
			}
			return code, restart, err
		case sig := <-sigs:
			cmd.Process.Signal(sig)
		case next, ok := <-cfg.Watch:
			if !ok {
				cfg.Watch = nil
				continue
			}
			restart = next
			stop()
		case <-ctxDone:
			ctxDone = nil
			restart = nil
			stop()
		case <-killTimer:
			warn(fmt.Sprintf("command did not stop within %s: killing it", cfg.StopTimeout))
			cmd.Process.Kill()
			killTimer = nil
		}
	}
}

func exitStatus(cmd *exec.Cmd, werr error) (int, error) {
	ps := cmd.ProcessState
	if ps == nil {
		return 1, werr
	}
	if ws, ok := ps.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return 128 + int(ws.Signal()), nil
	}
	var ee *exec.ExitError
	if werr != nil && !errors.As(werr, &ee) && !errors.Is(werr, exec.ErrWaitDelay) {
		// The child exited but copying its output failed, or WaitDelay expired.
		return ps.ExitCode(), fmt.Errorf("wait for command: %w", werr)
	}
	return ps.ExitCode(), nil
}

func startFailure(name string, err error) (int, map[string]string, error) {
	code := ExitNotExecutable
	if errors.Is(err, exec.ErrNotFound) || errors.Is(err, fs.ErrNotExist) {
		code = ExitNotFound
	}
	return code, nil, &StartError{Command: name, ExitCode: code, Err: unwrapPathErr(err)}
}

// unwrapPathErr drops the exec/path wrapper (which repeats the command) and
// keeps the reason.
func unwrapPathErr(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	var ee *exec.Error
	if errors.As(err, &ee) {
		return ee.Err
	}
	return err
}
