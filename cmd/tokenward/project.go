package main

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"
	"github.com/tokenward/tokenward"
)

func (m *Main) newProjectCommand() *cobra.Command {
	cmd := &cobra.Command{Use: "project", Short: "Create and list projects"}
	var cf clientFlags
	var envs []string
	create := &cobra.Command{
		Use:   "create NAME",
		Short: "Create a project with environments",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := m.client(&cf)
			if err != nil {
				return err
			}
			p, err := c.CreateProject(cmd.Context(), args[0], envs)
			if err != nil {
				return cliError(err)
			}
			return m.printProjects(cf.output, []*tokenward.Project{p}, false)
		},
	}
	cf.register(create, true)
	create.Flags().StringSliceVar(&envs, "envs", nil, "environments, comma-separated (dev,staging,prod)")

	var lf clientFlags
	list := &cobra.Command{
		Use:   "list",
		Short: "List projects",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := m.client(&lf)
			if err != nil {
				return err
			}
			ps, err := c.Projects(cmd.Context())
			if err != nil {
				return cliError(err)
			}
			return m.printProjects(lf.output, ps, true)
		},
	}
	lf.register(list, true)

	var sf clientFlags
	show := &cobra.Command{
		Use:   "show NAME",
		Short: "Show a project",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := m.client(&sf)
			if err != nil {
				return err
			}
			p, err := c.Project(cmd.Context(), args[0])
			if err != nil {
				return cliError(err)
			}
			return m.printProjects(sf.output, []*tokenward.Project{p}, false)
		},
	}
	sf.register(show, true)
	cmd.AddCommand(create, list, show, m.newProjectRetireCommand())
	return cmd
}

func (m *Main) printProjects(output string, ps []*tokenward.Project, asList bool) error {
	if output == "json" {
		if asList {
			return writeJSON(m.Stdout, ps)
		}
		return writeJSON(m.Stdout, ps[0])
	}
	rows := make([][]string, len(ps))
	for i, p := range ps {
		rows[i] = []string{p.Name, orDash(strings.Join(p.Envs, ",")), fmtTime(p.CreatedAt)}
	}
	return table(m.Stdout, []string{"PROJECT", "ENVIRONMENTS", "CREATED"}, rows)
}

func (m *Main) newEnvCommand() *cobra.Command {
	cmd := &cobra.Command{Use: "env", Short: "Manage environments"}
	var cf clientFlags
	create := &cobra.Command{
		Use:   "create PROJECT/ENV",
		Short: "Add an environment to a project",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			parts, err := splitPath(args[0], 2)
			if err != nil {
				return err
			}
			c, err := m.client(&cf)
			if err != nil {
				return err
			}
			if _, err := c.CreateEnv(cmd.Context(), parts[0], parts[1]); err != nil {
				return cliError(err)
			}
			fmt.Fprintf(m.Stderr, "Created environment %s.\n", args[0])
			return nil
		},
	}
	cf.register(create, false)
	cmd.AddCommand(create, m.newEnvRetireCommand(), m.newEnvRestoreCommand())
	return cmd
}
