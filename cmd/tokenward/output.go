package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"text/tabwriter"
	"unicode"

	"github.com/mattn/go-isatty"
	"github.com/spf13/cobra"
	"github.com/tokenward/tokenward/internal/client"
)

// How client commands print: -o table|json registered the same way on
// every list and show command, aligned tables (header in bold only on a
// terminal, never with NO_COLOR), key/value detail views and JSON; and the
// one shape client commands share: arguments checked → call → print.

// clientFlags are the flags every client command shares.
type clientFlags struct {
	tokenFile string
	output    string
}

func (f *clientFlags) register(cmd *cobra.Command, withOutput bool) {
	cmd.Flags().StringVar(&f.tokenFile, "token-file", "", "read the token from this file instead of TOKENWARD_TOKEN")
	if withOutput {
		outputFlag(cmd, &f.output, "table", "json")
	}
}

// formatValue is a flag value that must be one of formats.
type formatValue struct {
	p       *string
	formats []string
}

func (v *formatValue) String() string { return *v.p }
func (v *formatValue) Type() string   { return "format" }
func (v *formatValue) Set(s string) error {
	if !slices.Contains(v.formats, s) {
		return fmt.Errorf("want %s", orList(v.formats))
	}
	*v.p = s
	return nil
}

// outputFlag registers -o/--output FORMAT, one of formats (the first is
// the default), with shell completion of the formats.
func outputFlag(cmd *cobra.Command, p *string, formats ...string) {
	*p = formats[0]
	cmd.Flags().VarP(&formatValue{p, formats}, "output", "o", "output format: "+orList(formats))
	cmd.RegisterFlagCompletionFunc("output", cobra.FixedCompletions(formats, cobra.ShellCompDirectiveNoFileComp))
}

// orList is "a", "a or b", "a, b or c".
func orList(s []string) string {
	if len(s) < 2 {
		return strings.Join(s, "")
	}
	return strings.Join(s[:len(s)-1], ", ") + " or " + s[len(s)-1]
}

// call is one run of a client command: its arguments, client and format.
type call struct {
	*Main
	ctx    context.Context
	args   []string
	c      *client.Client
	output string
}

// clientCommand makes cmd a client command: it registers --token-file (and
// -o table|json with output), and its RunE builds the client from the
// environment and runs do. Checks that need no server belong in cmd.Args
// and cmd.PreRunE, which run first.
func (m *Main) clientCommand(cmd *cobra.Command, output bool, do func(x *call) error) *cobra.Command {
	var cf clientFlags
	cf.register(cmd, output)
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		c, err := m.client(&cf)
		if err != nil {
			return err
		}
		return do(&call{Main: m, ctx: cmd.Context(), args: args, c: c, output: cf.output})
	}
	return cmd
}

// group is a command that only holds subcommands.
func group(use, short string, subs ...*cobra.Command) *cobra.Command {
	cmd := &cobra.Command{Use: use, Short: short}
	cmd.AddCommand(subs...)
	return cmd
}

func (x *call) json() bool { return x.output == "json" }

// list prints v as JSON with -o json, else the table header and rows make.
func (x *call) list(v any, header []string, rows [][]string) error {
	if x.json() {
		return writeJSON(x.Stdout, v)
	}
	return x.table(header, rows)
}

// detail prints v as JSON with -o json, else a FIELD/VALUE table of the
// key, value pairs in kv.
func (x *call) detail(v any, kv ...string) error {
	rows := make([][]string, 0, len(kv)/2)
	for i := 0; i+1 < len(kv); i += 2 {
		rows = append(rows, []string{kv[i], kv[i+1]})
	}
	return x.list(v, []string{"FIELD", "VALUE"}, rows)
}

// done reports a change: v as JSON with -o json, else one line on stderr.
func (x *call) done(v any, format string, args ...any) error {
	if x.json() {
		return writeJSON(x.Stdout, v)
	}
	fmt.Fprintf(x.Stderr, format+"\n", args...)
	return nil
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	return enc.Encode(v)
}

// table writes aligned columns to stdout, the header in bold on a colour
// terminal.
func (m *Main) table(header []string, rows [][]string) error {
	var buf bytes.Buffer
	tw := tabwriter.NewWriter(&buf, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, strings.Join(header, "\t"))
	for _, r := range rows {
		cells := make([]string, len(r))
		for i, c := range r {
			cells[i] = cellText(c)
		}
		fmt.Fprintln(tw, strings.Join(cells, "\t"))
	}
	tw.Flush()
	out := buf.Bytes()
	if m.colour() {
		// After alignment: escape codes would count as width.
		head, rest, _ := bytes.Cut(out, []byte("\n"))
		out = append([]byte("\x1b[1m"+strings.TrimRight(string(head), " ")+"\x1b[0m\n"), rest...)
	}
	_, err := m.Stdout.Write(out)
	return err
}

// cellText is s with every control character (line breaks, tabs, ANSI and
// OSC escapes, C1 codes) as '?': a table cell holds free text others wrote
// (a secret's owner and tags), which must neither reach the terminal as
// commands nor break the table into forged rows.
func cellText(s string) string {
	return strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return '?'
		}
		return r
	}, s)
}

// colour reports whether stdout may get ANSI colour: a terminal, and
// neither NO_COLOR (https://no-color.org) nor TERM=dumb.
func (m *Main) colour() bool {
	return m.Getenv("NO_COLOR") == "" && m.Getenv("TERM") != "dumb" && isTerminal(m.Stdout)
}

// isTerminal reports whether w is a terminal (a variable for tests).
var isTerminal = func(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && (isatty.IsTerminal(f.Fd()) || isatty.IsCygwinTerminal(f.Fd()))
}
