package main

import (
	"context"
	"fmt"
	"slices"

	"github.com/spf13/cobra"
	"github.com/tokenward/tokenward"
	"github.com/tokenward/tokenward/internal/client"
	"github.com/tokenward/tokenward/internal/manifest"
)

func (m *Main) newApplyCommand() *cobra.Command {
	var cf clientFlags
	var file string
	var dryRun bool
	cmd := &cobra.Command{
		Use:   "apply [--manifest tokenward.yaml] [--dry-run]",
		Short: "Create what tokenward.yaml declares and the server lacks (prints the plan first)",
		Long: `apply prints the plan, then creates the project and environments the manifest
declares and the server lacks. It never deletes anything and never invents a value:
a declared secret without a value is listed as needing one.

Trust bindings (pipelines:) are created by name when missing. Not carried out yet
(listed with the command to use instead): secret metadata without a value (the
server keeps metadata with a value only) and rotation policies.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			man, err := loadManifest(file)
			if err != nil {
				return err
			}
			c, err := m.client(&cf)
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			state, err := gatherState(ctx, c, man)
			if err != nil {
				return cliError(err)
			}
			plan := man.Plan(state)
			if err := plan.WriteText(m.Stdout); err != nil {
				return err
			}
			if dryRun {
				fmt.Fprintln(m.Stderr, "Dry run: nothing changed.")
				return nil
			}
			return m.applyPlan(ctx, c, plan)
		},
	}
	cf.register(cmd, false)
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
func (m *Main) applyPlan(ctx context.Context, c *client.Client, plan manifest.Plan) error {
	done, skipped := 0, 0
	skip := func(format string, args ...any) {
		skipped++
		fmt.Fprintf(m.Stderr, "Not applied: "+format+"\n", args...)
	}
	for _, a := range plan.Changes() {
		switch a.Kind {
		case manifest.CreateProject:
			if _, err := c.CreateProject(ctx, a.Project, a.Envs); err != nil {
				return fmt.Errorf("create project %s: %v", a.Project, cliError(err))
			}
			fmt.Fprintf(m.Stderr, "Created project %s\n", a.Project)
			done++
		case manifest.CreateEnvironment:
			if _, err := c.CreateEnv(ctx, a.Project, a.Env); err != nil {
				return fmt.Errorf("create environment %s/%s: %v", a.Project, a.Env, cliError(err))
			}
			fmt.Fprintf(m.Stderr, "Created environment %s/%s\n", a.Project, a.Env)
			done++
		case manifest.CreateSecret, manifest.UpdateSecretMeta:
			skip("secret %s metadata: the server stores metadata with a value only; set both with `tokenward secret set %s --owner ...` (value on stdin)", a.Path(), a.Path())
		case manifest.CreateBinding:
			b, err := c.CreateBindingResult(ctx, bindingInput(a.Binding))
			if err != nil {
				return fmt.Errorf("create binding %s: %v", a.Binding.Name, cliError(err))
			}
			fmt.Fprintf(m.Stderr, "Created binding %s\n", b.Name)
			for _, w := range b.Warnings {
				fmt.Fprintf(m.Stderr, "tokenward: warning: binding %s: %s\n", b.Name, w)
			}
			done++
		case manifest.CreateRotationPolicy:
			skip("rotation policy for %s: apply cannot create rotation policies yet (the CLI has no rotation client)", a.Path())
		default:
			skip("%s (unknown action)", a.Kind)
		}
	}
	fmt.Fprintf(m.Stderr, "Applied %d, not applied %d, %d secret(s) need a value; nothing was deleted.\n", done, skipped, len(plan.NeedsValues()))
	return nil
}

// bindingInput is the API form of a manifest pipeline.
func bindingInput(p *manifest.Pipeline) client.BindingInput {
	in := client.BindingInput{
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
		in.Claims = append(in.Claims, client.ClaimCondition{Claim: cl.Name, Values: cl.Values})
	}
	return in
}
