package main

import (
	"strings"

	"github.com/spf13/cobra"
	"github.com/tokenward/tokenward"
)

func (m *Main) newProjectCommand() *cobra.Command {
	cmd := &cobra.Command{Use: "project", Short: "Create and list projects"}
	var envs []string
	create := m.clientCommand(&cobra.Command{
		Use:     "create NAME",
		Short:   "Create a project with environments",
		Example: "  tokenward project create payments --envs dev,staging,prod",
		Args:    exactArgs(argument{"NAME", "payments", 0}),
	}, true, func(x *call) error {
		p, err := x.c.CreateProject(x.ctx, x.args[0], envs)
		if err != nil {
			return cliError(err)
		}
		return x.list(p, projectHeader, projectRows(p))
	})
	create.Flags().StringSliceVar(&envs, "envs", nil, "environments, comma-separated (dev,staging,prod)")
	list := m.clientCommand(&cobra.Command{
		Use: "list", Short: "List projects", Example: "  tokenward project list", Args: noArgs,
	}, true, func(x *call) error {
		ps, err := x.c.Projects(x.ctx)
		if err != nil {
			return cliError(err)
		}
		return x.list(ps, projectHeader, projectRows(ps...))
	})
	show := m.clientCommand(&cobra.Command{
		Use: "show PROJECT", Short: "Show a project", Example: "  tokenward project show payments",
		Args: exactArgs(argProject), ValidArgsFunction: m.complete(argProject),
	}, true, func(x *call) error {
		p, err := x.c.Project(x.ctx, x.args[0])
		if err != nil {
			return cliError(err)
		}
		return x.list(p, projectHeader, projectRows(p))
	})
	cmd.AddCommand(create, list, show, m.newRetireCommand(argProject))
	return cmd
}

var projectHeader = []string{"PROJECT", "ENVIRONMENTS", "CREATED"}

func projectRows(ps ...*tokenward.Project) [][]string {
	rows := make([][]string, len(ps))
	for i, p := range ps {
		rows[i] = []string{p.Name, orDash(strings.Join(p.Envs, ",")), fmtTime(p.CreatedAt)}
	}
	return rows
}

func (m *Main) newEnvCommand() *cobra.Command {
	cmd := &cobra.Command{Use: "env", Short: "Manage environments"}
	create := m.clientCommand(&cobra.Command{
		Use:               "create PROJECT/ENV",
		Short:             "Add an environment to a project",
		Example:           "  tokenward env create payments/qa",
		Args:              exactArgs(argEnv),
		ValidArgsFunction: m.complete(argEnv),
	}, false, func(x *call) error {
		p := strings.Split(x.args[0], "/")
		if _, err := x.c.CreateEnv(x.ctx, p[0], p[1]); err != nil {
			return cliError(err)
		}
		return x.done(nil, "Created environment %s.", x.args[0])
	})
	cmd.AddCommand(create, m.newRetireCommand(argEnv), m.newEnvRestoreCommand())
	return cmd
}
