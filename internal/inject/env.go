package inject

import (
	"slices"
	"strings"

	"github.com/tokenward/tokenward"
)

// hijackNames are variables that change what a program loads or runs rather
// than what it reads: injecting one hands whoever can write the secret
// control of the child. See IsHijackName.
var hijackNames = map[string]bool{
	"PATH": true, "IFS": true, "CDPATH": true, "ENV": true, "BASH_ENV": true,
	"PS4": true, "PROMPT_COMMAND": true, "SHELLOPTS": true, "BASHOPTS": true, "GLOBIGNORE": true,
	"NODE_OPTIONS": true, "NODE_PATH": true,
	"PYTHONPATH": true, "PYTHONSTARTUP": true, "PYTHONHOME": true, "PYTHONINSPECT": true,
	"PERL5OPT": true, "PERL5LIB": true, "PERLLIB": true,
	"RUBYOPT": true, "RUBYLIB": true,
	"GIT_SSH_COMMAND": true, "GIT_SSH": true, "GIT_EXEC_PATH": true, "GIT_ASKPASS": true,
	"GIT_CONFIG_GLOBAL": true, "GIT_CONFIG_SYSTEM": true, "GIT_CONFIG": true,
	"GIT_CONFIG_COUNT": true, "GIT_CONFIG_PARAMETERS": true, // config from the environment: core.sshCommand, core.fsmonitor...
	"GIT_PROXY_COMMAND": true, "GIT_EXTERNAL_DIFF": true, "GIT_EDITOR": true, "GIT_SEQUENCE_EDITOR": true, // commands git runs
	"LESSOPEN": true, "LESSCLOSE": true, // commands less runs on each file
	"SSH_ASKPASS": true, "EDITOR": true, "VISUAL": true, "PAGER": true, "GIT_PAGER": true,
	"JAVA_TOOL_OPTIONS": true, "_JAVA_OPTIONS": true, "JDK_JAVA_OPTIONS": true, "CLASSPATH": true,
	"DOTNET_STARTUP_HOOKS": true, "GCONV_PATH": true, "HOSTALIASES": true, "MALLOC_CHECK_": true,
	"GOFLAGS": true, "LUA_INIT": true, "TCLLIBPATH": true,
	// Exported through $GITHUB_ENV, it re-enables ::set-env:: in later
	// steps: any line a step prints could then set LD_PRELOAD for the next.
	"ACTIONS_ALLOW_UNSECURE_COMMANDS": true,
}

// IsHijackName reports whether injecting a variable of this name could make
// the child load or run code chosen by the secret's value: loader variables
// (LD_*, DYLD_*), PATH, shell start-up hooks, interpreter option variables
// and git configuration given in the environment (GIT_CONFIG_KEY_<n> and
// GIT_CONFIG_VALUE_<n>). The check ignores case, since some platforms do.
func IsHijackName(name string) bool {
	u := strings.ToUpper(name)
	return hijackNames[u] || strings.HasPrefix(u, "LD_") || strings.HasPrefix(u, "DYLD_") ||
		strings.HasPrefix(u, "BASH_FUNC_") ||
		strings.HasPrefix(u, "GIT_CONFIG_KEY_") || strings.HasPrefix(u, "GIT_CONFIG_VALUE_")
}

// EnvOptions selects and names the secrets put into the child's environment.
type EnvOptions struct {
	NoOverride bool     // keep variables the inherited environment already has
	Prefix     string   // prepended to every injected name
	Only       []string // if set, inject only these secret names (before Prefix)
	Allow      []string // hijacking names (after Prefix) explicitly allowed
	// Reserved are variables the caller sets itself (run --gateway's): a
	// secret injected under one of these names (after Prefix) is an
	// error, NoOverride or not, rather than one silently replacing the other.
	Reserved []string
}

// BuildEnv returns the child's environment: base with the secrets set over
// it, and the name → value map that was actually injected. Warnings name the
// variables that were skipped or allowed; neither warnings nor errors ever
// hold a value.
func BuildEnv(base []string, secrets map[string]string, opt EnvOptions) (env []string, injected map[string]string, warnings []string, err error) {
	if opt.Prefix != "" {
		if err := tokenward.ValidateSecretName(opt.Prefix); err != nil {
			return nil, nil, nil, tokenward.Errorf(tokenward.EINVALID, "prefix %q is not a valid start of a variable name", printable(opt.Prefix))
		}
	}
	names := make([]string, 0, len(secrets))
	if len(opt.Only) > 0 {
		var missing []string
		for _, n := range opt.Only {
			if _, ok := secrets[n]; !ok {
				missing = append(missing, printable(n))
				continue
			}
			names = append(names, n)
		}
		if len(missing) > 0 {
			return nil, nil, nil, tokenward.Errorf(tokenward.ENOTFOUND, "--only names secrets the environment does not have (or the token may not read): %s", strings.Join(missing, ", "))
		}
	} else {
		for n := range secrets {
			names = append(names, n)
		}
	}
	slices.Sort(names)
	names = slices.Compact(names)

	existing := map[string]int{}
	for i, kv := range base {
		k, _, _ := strings.Cut(kv, "=")
		existing[k] = i
	}
	var clashes []string
	for _, n := range names {
		if slices.Contains(opt.Reserved, opt.Prefix+n) {
			clashes = append(clashes, printable(opt.Prefix+n))
		}
	}
	if len(clashes) > 0 {
		return nil, nil, nil, tokenward.Errorf(tokenward.EINVALID, "secrets would be injected as variables --gateway sets itself: %s (leave them out with --only or rename them with --prefix)", strings.Join(clashes, ", "))
	}

	env = slices.Clone(base)
	injected = make(map[string]string, len(names))
	for _, n := range names {
		full := opt.Prefix + n
		if err := tokenward.ValidateSecretName(full); err != nil {
			return nil, nil, nil, err
		}
		if IsHijackName(full) {
			if !slices.Contains(opt.Allow, full) {
				warnings = append(warnings, "not injecting "+full+": it could hijack the child (allow it explicitly to inject it)")
				continue
			}
			warnings = append(warnings, "injecting "+full+" although it can change what the child runs (explicitly allowed)")
		}
		if i, ok := existing[full]; ok {
			if opt.NoOverride {
				continue
			}
			env[i] = full + "=" + secrets[n]
		} else {
			existing[full] = len(env)
			env = append(env, full+"="+secrets[n])
		}
		injected[full] = secrets[n]
	}
	return env, injected, warnings, nil
}

// printable keeps s short and printable for an error message.
func printable(s string) string {
	const limit = 64
	b := make([]byte, 0, min(len(s), limit))
	for i := 0; i < len(s) && len(b) < limit; i++ {
		if c := s[i]; c >= 0x20 && c < 0x7f {
			b = append(b, c)
		} else {
			b = append(b, '?')
		}
	}
	if len(s) > limit {
		return string(b) + "..."
	}
	return string(b)
}

// Merge combines the secrets of several --env flags into one map; a name in
// a later set wins over the same name in an earlier one.
func Merge(sets ...map[string]string) map[string]string {
	out := map[string]string{}
	for _, s := range sets {
		for n, v := range s {
			out[n] = v
		}
	}
	return out
}
