package inject

import (
	"os/exec"
	"slices"
	"strings"
	"testing"

	"github.com/tokenward/tokenward"
)

// TestGitHubMaskSplitsAtBareCR: the Actions runner reads a step's output
// with StreamReader.ReadLine, which ends a line at "\r" as well as "\n", and
// masks each line on its own (it splits its own secrets at both, too). A
// ::add-mask:: of a value line that still holds a bare CR never matches a
// log line, so both halves of the value are logged in clear.
func TestGitHubMaskSplitsAtBareCR(t *testing.T) {
	tests := []struct {
		name, value string
		want        []string // add-mask data, as the runner unescapes it
	}{
		{"bare CR", "fake-half-one\rfake-half-two", []string{"fake-half-one", "fake-half-two"}},
		{"CR and LF mixed", "fake-one\rfake-two\nfake-three\r\nfake-four", []string{"fake-one", "fake-two", "fake-three", "fake-four"}},
		{"trailing CR", "fake-value\r", []string{"fake-value"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, masks, err := EncodeGitHub(map[string]string{"K": tt.value})
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, l := range strings.Split(strings.TrimSuffix(string(masks), "\n"), "\n") {
				got = append(got, strings.NewReplacer("%0D", "\r", "%0A", "\n", "%25", "%").Replace(strings.TrimPrefix(l, "::add-mask::")))
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("add-mask data %q; want %q (one per line the runner logs)", got, tt.want)
			}
		})
	}
}

// TestGitLabSizeLimitIsExclusive: GitLab's ParseDotenvArtifactService
// accepts a dotenv artifact only when artifact.file.size < dotenv_size
// (5120 by default; its docs: "must be smaller than 5 kilobytes"), so a file
// of exactly 5120 bytes is rejected by GitLab and must be refused here.
func TestGitLabSizeLimitIsExclusive(t *testing.T) {
	tests := []struct {
		name string
		size int // bytes of the artifact "K=<value>\n"
		ok   bool
	}{
		{"one below the limit", GitLabMaxDotenvSize - 1, true},
		{"exactly the limit", GitLabMaxDotenvSize, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			vals := map[string]string{"K": strings.Repeat("x", tt.size-len("K=\n"))}
			data, err := Encode(FormatGitLab, vals)
			if tt.ok && err != nil {
				t.Fatalf("Encode: %v; want it accepted", err)
			}
			if !tt.ok && err == nil {
				t.Fatalf("Encode accepted a %d-byte artifact; GitLab rejects it (size must be < %d)", len(data), GitLabMaxDotenvSize)
			}
			if !tt.ok && tokenward.ErrorCode(err) != tokenward.ETOOLARGE {
				t.Errorf("code %q; want %q", tokenward.ErrorCode(err), tokenward.ETOOLARGE)
			}
			raw := []byte("K=" + vals["K"] + "\n")
			if _, err := Decode(FormatGitLab, raw); (err == nil) != tt.ok {
				t.Errorf("Decode of %d bytes: err %v; want ok=%v", len(raw), err, tt.ok)
			}
		})
	}
}

// TestPlatformFormatsRefuseNonUTF8: the Actions runner reads $GITHUB_ENV
// with File.ReadAllText (UTF-8, invalid bytes become U+FFFD) and GitLab
// converts a dotenv artifact with encode_utf8_with_replacement_character,
// so a value that is not UTF-8 would reach later steps changed. Refuse it,
// as the json format does, rather than hand over a different secret.
func TestPlatformFormatsRefuseNonUTF8(t *testing.T) {
	for _, f := range []Format{FormatGitHub, FormatGitLab} {
		t.Run(string(f), func(t *testing.T) {
			_, err := Encode(f, map[string]string{"K": "fake\xff\xfevalue"})
			if err == nil {
				t.Fatalf("Encode accepted a non-UTF-8 value; the platform would replace its bytes with U+FFFD")
			}
			if tokenward.ErrorCode(err) != tokenward.EINVALID || !strings.Contains(err.Error(), "UTF-8") || !strings.Contains(err.Error(), "K") {
				t.Errorf("got %v; want an EINVALID error naming K and UTF-8", err)
			}
			if strings.Contains(err.Error(), "fake") {
				t.Errorf("error %q holds the value", err)
			}
		})
	}
	// Byte-transparent formats keep carrying such values.
	for _, f := range []Format{FormatDotenv, FormatShell} {
		if _, err := Encode(f, map[string]string{"K": "fake\xffvalue"}); err != nil {
			t.Errorf("%s: %v; want non-UTF-8 values carried", f, err)
		}
	}
}

// TestHijackNamesGitConfigEnv: git reads configuration from the
// environment (GIT_CONFIG_COUNT with GIT_CONFIG_KEY_<n>/GIT_CONFIG_VALUE_<n>,
// and GIT_CONFIG_PARAMETERS), which sets core.sshCommand, core.fsmonitor,
// core.pager and the like: the same control GIT_SSH_COMMAND and
// GIT_CONFIG_GLOBAL, already refused, give.
func TestHijackNamesGitConfigEnv(t *testing.T) {
	secrets := map[string]string{
		"GIT_CONFIG_COUNT":      "1",
		"GIT_CONFIG_KEY_0":      "core.sshCommand",
		"GIT_CONFIG_VALUE_0":    "fake-evil-command",
		"GIT_CONFIG_PARAMETERS": "'core.fsmonitor'='fake-evil-command'",
		"git_config_key_1":      "core.pager",
		"PLAIN":                 "fake-plain",
	}
	env, injected, _, err := BuildEnv(nil, secrets, EnvOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for n := range secrets {
		if _, ok := injected[n]; ok != (n == "PLAIN") {
			t.Errorf("%s injected = %v; want %v", n, ok, n == "PLAIN")
		}
	}
	// Show what git makes of these variables when they do get through.
	git, err := exec.LookPath("git")
	if err != nil {
		return
	}
	cmd := exec.Command(git, "config", "--get", "core.sshCommand")
	cmd.Env = []string{"GIT_CONFIG_COUNT=1", "GIT_CONFIG_KEY_0=core.sshCommand", "GIT_CONFIG_VALUE_0=fake-evil-command", "GIT_CONFIG_NOSYSTEM=1", "HOME=" + t.TempDir()}
	if out, err := cmd.Output(); err == nil && strings.TrimSpace(string(out)) == "fake-evil-command" {
		for _, kv := range env {
			if strings.HasPrefix(kv, "GIT_CONFIG_") {
				t.Errorf("child env holds %q, which git turns into core.sshCommand", kv)
			}
		}
	}
}
