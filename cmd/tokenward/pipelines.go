package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/tokenward/tokenward"
	"github.com/tokenward/tokenward/internal/client"
	"github.com/tokenward/tokenward/internal/inject"
)

// envRef is one --env project/environment.
type envRef struct{ project, env string }

func (e envRef) String() string { return e.project + "/" + e.env }

// parseEnvRefs checks each --env value.
func parseEnvRefs(ss []string) ([]envRef, error) {
	if len(ss) == 0 {
		return nil, usageError("--env project/environment is required")
	}
	out := make([]envRef, 0, len(ss))
	for _, s := range ss {
		project, env, ok := strings.Cut(s, "/")
		if !ok || strings.Contains(env, "/") {
			return nil, usageError("--env %s: want project/environment", echoArg(s))
		}
		err := tokenward.ValidateProjectName(project)
		if err == nil {
			err = tokenward.ValidateEnvName(env)
		}
		if err != nil && !echoable(s) {
			return nil, usageError("--env %s: want a lowercase DNS label on each side of the /", echoArg(s))
		}
		if err != nil {
			return nil, usageError("--env %s", tokenward.ErrorMessage(err))
		}
		out = append(out, envRef{project, env})
	}
	return out, nil
}

func envStrings(refs []envRef) []string {
	out := make([]string, len(refs))
	for i, r := range refs {
		out[i] = r.String()
	}
	return out
}

// selectFlags are the secret-selection flags run and export share.
type selectFlags struct {
	envs   []string
	only   []string
	prefix string
	allow  []string
}

func (f *selectFlags) register(cmd *cobra.Command) {
	fl := cmd.Flags()
	fl.StringArrayVar(&f.envs, "env", nil, "project/environment to read (repeatable; a name in a later one wins)")
	fl.StringSliceVar(&f.only, "only", nil, "deliver only these secret names (comma-separated)")
	fl.StringVar(&f.prefix, "prefix", "", "prefix for every variable name (APP_)")
	fl.StringSliceVar(&f.allow, "allow-env", nil, "allow a name that could hijack the program (LD_PRELOAD, PATH...), with a warning")
}

func (f *selectFlags) options() inject.EnvOptions {
	return inject.EnvOptions{Prefix: f.prefix, Only: f.only, Allow: f.allow}
}

// fetchEnvs fetches every readable secret of each environment, one
// request each, merged so a later --env wins.
func fetchEnvs(ctx context.Context, c *client.Client, refs []envRef) (map[string]string, error) {
	sets := make([]map[string]string, 0, len(refs))
	for _, r := range refs {
		ev, err := c.EnvValues(ctx, r.project, r.env)
		if err != nil {
			return nil, fmt.Errorf("fetch %s: %w", r, err)
		}
		sets = append(sets, ev.Values)
	}
	return inject.Merge(sets...), nil
}

// unreachable reports whether err means the server could not answer at all
// (the only case in which run --fallback uses its snapshot).
func unreachable(err error) bool {
	return errors.Is(err, client.ErrUnreachable) || tokenward.ErrorCode(err) == tokenward.EUNAVAILABLE
}

// denied reports whether the server refused the token, or answered that
// the environment is gone: either way the fallback snapshot must go, so a
// later outage cannot serve what the server no longer gives.
func denied(err error) bool {
	var e *tokenward.Error
	if !asError(err, &e) {
		return false
	}
	return e.Code == tokenward.EUNAUTHORIZED || e.Code == tokenward.EFORBIDDEN || e.Code == tokenward.ENOTFOUND
}

// warner prints warnings on w; they never hold a value.
func warner(w io.Writer) func(string) {
	return func(msg string) { fmt.Fprintf(w, "tokenward: warning: %s\n", msg) }
}

// versionsOf returns path → version of the secrets of refs (metadata only,
// no values), restricted to names in only when it is set.
func versionsOf(ctx context.Context, c *client.Client, refs []envRef, only []string) (map[string]int, error) {
	out := map[string]int{}
	for _, r := range refs {
		list, err := c.Secrets(ctx, r.project, r.env)
		if err != nil {
			return nil, fmt.Errorf("list %s: %w", r, err)
		}
		for _, s := range list {
			if len(only) == 0 || slices.Contains(only, s.Name) {
				out[s.Path()] = s.Version
			}
		}
	}
	return out, nil
}

// watchSecrets polls the environments' versions every interval and, when
// one changes (a write, a rotation, a secret added or removed), fetches the
// values again and sends them. It stops when ctx ends.
func watchSecrets(ctx context.Context, c *client.Client, refs []envRef, only []string, base map[string]int, interval time.Duration, warn func(string)) <-chan map[string]string {
	ch := make(chan map[string]string)
	go func() {
		defer close(ch)
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			now, err := versionsOf(ctx, c, refs, only)
			if err != nil {
				if ctx.Err() == nil {
					warn(fmt.Sprintf("watch: %v", cliError(err)))
				}
				continue
			}
			if maps.Equal(now, base) {
				continue
			}
			values, err := fetchEnvs(ctx, c, refs)
			if err != nil {
				if ctx.Err() == nil {
					warn(fmt.Sprintf("watch: %v", cliError(err)))
				}
				continue
			}
			base = now
			select {
			case ch <- values:
			case <-ctx.Done():
				return
			}
		}
	}()
	return ch
}

// apiClient builds the client from TOKENWARD_TOKEN/--token-file, or, with
// --oidc, from a just-in-time token for the CI job's identity token.
func (m *Main) apiClient(ctx context.Context, cf *clientFlags, oidc bool, o oidcLoginOptions) (*client.Client, error) {
	if !oidc {
		return m.client(cf)
	}
	if cf.tokenFile != "" {
		return nil, usageError("--oidc and --token-file exclude each other")
	}
	token, err := oidcLogin(m, ctx, o)
	if err != nil {
		return nil, err
	}
	// The same TLS trust as the login (TOKENWARD_CACERT).
	return m.newClient(strings.TrimSpace(token))
}
