package main

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/spf13/cobra"
	"github.com/tokenward/tokenward"
	"github.com/tokenward/tokenward/internal/api"
	"github.com/tokenward/tokenward/internal/client"
	"github.com/tokenward/tokenward/internal/manifest"
)

func (m *Main) newApplyCommand() *cobra.Command {
	var file string
	var dryRun bool
	var man *manifest.Manifest
	cmd := m.clientCommand(&cobra.Command{
		Use:   "apply [--manifest tokenward.yaml] [--dry-run]",
		Short: "Create what tokenward.yaml declares and the server lacks (prints the plan first)",
		Long: `apply prints the plan, then creates the project and environments the manifest
declares and the server lacks. It never deletes anything and never invents a value:
a declared secret without a value is listed as needing one.

Trust bindings (pipelines:) and rotation policies (rotation:) are created when
missing. Not carried out yet (listed with the command to use instead): secret
metadata (the server keeps metadata only together with a value). A policy the
server refuses is reported and apply goes on, then exits 1.`,
		Example: "  tokenward apply --dry-run\n  tokenward apply --manifest deploy/tokenward.yaml",
		Args:    noArgs,
		PreRunE: func(cmd *cobra.Command, args []string) (err error) {
			man, err = loadManifest(file)
			return err
		},
	}, false, func(x *call) error {
		state, err := gatherState(x.ctx, x.c, man)
		if err != nil {
			return cliError(err)
		}
		plan := man.Plan(state)
		if err := plan.WriteText(x.Stdout); err != nil {
			return err
		}
		if dryRun {
			return x.done(nil, "Dry run: nothing changed.")
		}
		return x.applyPlan(plan)
	})
	cmd.Flags().StringVar(&file, "manifest", manifest.DefaultFile, "the manifest")
	cmd.Flags().BoolVar(&dryRun, "dry-run", false, "print the plan only")
	return cmd
}

// gatherState asks the server what exists of the manifest's project.
func gatherState(ctx context.Context, c *client.Client, man *manifest.Manifest) (manifest.State, error) {
	var state manifest.State
	p, err := c.Project(ctx, man.Project)
	if tokenward.ErrorCode(err) == tokenward.ENOTFOUND {
		// A new project: bindings are global, so they may exist already.
		if len(man.Pipelines) > 0 {
			if state.Bindings, err = c.BindingNames(ctx); err != nil {
				return state, fmt.Errorf("list bindings: %v", cliError(err))
			}
		}
		return state, nil
	}
	if err != nil {
		return state, err
	}
	state.Projects = []tokenward.Project{*p}
	if len(man.Rotation) > 0 {
		ps, err := c.RotationPolicies(ctx)
		if err != nil {
			return state, fmt.Errorf("list rotation policies: %v", cliError(err))
		}
		for _, rp := range ps {
			state.RotationPolicies = append(state.RotationPolicies, rp.Secret)
		}
	}
	if len(man.Dynamic) > 0 {
		ss, err := c.DynamicSources(ctx, man.Project+"/")
		if err != nil {
			return state, fmt.Errorf("list dynamic sources: %v", cliError(err))
		}
		for _, s := range ss {
			state.DynamicSources = append(state.DynamicSources, s.Path)
		}
	}
	if len(man.Pipelines) > 0 {
		names, err := c.BindingNames(ctx)
		if err != nil {
			return state, fmt.Errorf("list bindings: %v", cliError(err))
		}
		state.Bindings = names
	}
	for _, e := range man.EnvNames() {
		if !slices.Contains(p.Envs, e) {
			continue
		}
		list, err := c.Secrets(ctx, man.Project, e)
		if err != nil {
			return state, fmt.Errorf("list %s/%s: %v", man.Project, e, cliError(err))
		}
		for _, s := range list {
			state.Secrets = append(state.Secrets, *s)
		}
	}
	return state, nil
}

// applyPlan carries out what the server can do today and says plainly what
// it did not do.
func (x *call) applyPlan(plan manifest.Plan) error {
	ctx, c := x.ctx, x.c
	done, skipped, failed := 0, 0, 0
	skip := func(format string, args ...any) {
		skipped++
		fmt.Fprintf(x.Stderr, "Not applied: "+format+"\n", args...)
	}
	for _, a := range plan.Changes() {
		switch a.Kind {
		case manifest.CreateProject:
			if _, err := c.CreateProject(ctx, a.Project, a.Envs); err != nil {
				return fmt.Errorf("create project %s: %v", a.Project, cliError(err))
			}
			fmt.Fprintf(x.Stderr, "Created project %s\n", a.Project)
			done++
		case manifest.CreateEnvironment:
			if _, err := c.CreateEnv(ctx, a.Project, a.Env); err != nil {
				return fmt.Errorf("create environment %s/%s: %v", a.Project, a.Env, cliError(err))
			}
			fmt.Fprintf(x.Stderr, "Created environment %s/%s\n", a.Project, a.Env)
			done++
		case manifest.CreateSecret, manifest.UpdateSecretMeta:
			skip("secret %s metadata: the server stores metadata with a value only; set both with `tokenward secret set %s --owner ...` (value on stdin)", a.Path(), a.Path())
		case manifest.CreateBinding:
			b, err := c.CreateBindingResult(ctx, bindingInput(a.Binding))
			if err != nil {
				return fmt.Errorf("create binding %s: %v", a.Binding.Name, cliError(err))
			}
			fmt.Fprintf(x.Stderr, "Created binding %s\n", b.Name)
			for _, w := range b.Warnings {
				fmt.Fprintf(x.Stderr, "tokenward: warning: binding %s: %s\n", b.Name, w)
			}
			done++
		case manifest.CreateRotationPolicy:
			// A policy may be refused (a secret that does not exist yet, a
			// rotator config the server rejects): said, and apply goes on.
			if _, err := c.SetRotationPolicy(ctx, rotationPolicy(a.Path(), a.Rotation)); err != nil {
				failed++
				fmt.Fprintf(x.Stderr, "Failed: rotation policy for %s: %v\n", a.Path(), cliError(err))
				continue
			}
			fmt.Fprintf(x.Stderr, "Created rotation policy for %s\n", a.Path())
			done++
		case manifest.CreateDynamicSource:
			if _, err := c.PutDynamicSource(ctx, a.Path(), dynamicSourceInput(a)); err != nil {
				failed++
				fmt.Fprintf(x.Stderr, "Failed: dynamic source %s: %v\n", a.Path(), cliError(err))
				continue
			}
			fmt.Fprintf(x.Stderr, "Created dynamic source %s\n", a.Path())
			done++
		default:
			skip("%s (unknown action)", a.Kind)
		}
	}
	fmt.Fprintf(x.Stderr, "Applied %d, not applied %d, failed %d, %d secret(s) need a value; nothing was deleted.\n", done, skipped, failed, len(plan.NeedsValues()))
	if failed > 0 {
		return &exitError{code: 1, err: fmt.Errorf("%d action(s) failed", failed)}
	}
	return nil
}

// bindingInput is the API form of a manifest pipeline.
func bindingInput(p *manifest.Pipeline) api.CreateBindingRequest {
	in := api.CreateBindingRequest{
		Name: p.Name, Preset: p.Preset, Issuer: p.Issuer, Audiences: p.Audiences,
		Grants: p.Grants.Strings(), TTL: p.TTL.String(), Disabled: !p.Enabled,
	}
	// The server refuses a preset with an issuer other than the preset's,
	// which the manifest allows for self-hosted instances: send the issuer
	// alone then.
	if p.Preset != "" && p.Issuer != manifest.Presets[p.Preset] {
		in.Preset = ""
	}
	for _, cl := range p.Claims {
		// Op is left to the server, which derives it from the values the
		// way the manifest documents (exact, glob with '*', one of a list).
		in.Claims = append(in.Claims, api.ClaimCondition{Claim: cl.Name, Values: cl.Values})
	}
	return in
}

// rotationPolicy is the API form of a manifest rotation policy, durations
// in Go's form (which the server accepts beside 30d and 2w).
func rotationPolicy(path string, r *manifest.RotationPolicy) *api.RotationPolicy {
	dur := func(d time.Duration) string {
		if d == 0 {
			return ""
		}
		return d.String()
	}
	return &api.RotationPolicy{Secret: path, RotationSettings: api.RotationSettings{
		Every: dur(r.Every), Cron: r.Cron, Jitter: dur(r.Jitter), Grace: dur(r.Grace),
		Rotator: r.Rotator, Config: r.Config,
	}}
}
