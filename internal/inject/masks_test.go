package inject

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// gatewayToken stands for the run's own tokenward token, which run
// --gateway sets in the tools' variables (GITHUB_TOKEN...).
const gatewayToken = "twj_R3viewGatewayToken0123456789abcdefABCDEFxyz01234"

// TestRunMasksExtraValues: a value the caller sets itself (Masks) is
// masked like a secret's, also in encoded forms and after a Watch
// restart, though it is not one of the secrets.
func TestRunMasksExtraValues(t *testing.T) {
	base := append(os.Environ(), "GITHUB_TOKEN="+gatewayToken)
	masks := map[string]string{"GITHUB_TOKEN (--gateway)": gatewayToken}
	t.Run("once", func(t *testing.T) {
		stdout, stderr := newSyncBuffer(), newSyncBuffer()
		code, err := Run(context.Background(), RunConfig{
			Command: []string{testChild(t), "print", "GITHUB_TOKEN"},
			Secrets: map[string]string{"API_KEY": runSecrets["API_KEY"]}, BaseEnv: base, Masks: masks,
			Stdout: stdout, Stderr: stderr,
		})
		if err != nil || code != 0 {
			t.Fatalf("Run: got %d, %v; want 0, nil", code, err)
		}
		all := stdout.String() + stderr.String()
		if l := leaks(all, masks); len(l) > 0 {
			t.Errorf("output leaks %v:\n%s", l, all)
		}
		if !strings.Contains(all, "raw GITHUB_TOKEN=***\n") {
			t.Errorf("output lacks the masked variable:\n%s", all)
		}
	})
	t.Run("watch restart", func(t *testing.T) {
		out := newSyncBuffer()
		watch := make(chan map[string]string)
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		done := make(chan error, 1)
		script := `echo "start $GEN $GITHUB_TOKEN"; trap 'exit 0' TERM; while :; do sleep 0.05; done`
		go func() {
			_, err := Run(ctx, RunConfig{
				Command: []string{"sh", "-c", script}, Secrets: map[string]string{"GEN": "first-value"},
				BaseEnv: base, Masks: masks, Watch: watch, Stdout: out, StopTimeout: 5e9,
			})
			done <- err
		}()
		out.waitFor(t, "start *** ")
		watch <- map[string]string{"GEN": "second-value"}
		out.waitFor(t, "start *** ***\nstart *** ***\n")
		cancel()
		<-done
		if strings.Contains(out.String(), gatewayToken) {
			t.Errorf("output holds the value in clear:\n%s", out.String())
		}
	})
}

// TestBuildEnvReserved: a secret injected under a name the caller sets
// itself (Reserved) is an error naming the variable, never a value, with
// or without NoOverride; Only leaving it out or Prefix renaming it clears
// the clash.
func TestBuildEnvReserved(t *testing.T) {
	secrets := map[string]string{"GITHUB_TOKEN": "ghp_stored_value_0123456789", "GH_TOKEN": "ghp_other_value_0123456789", "DB_URL": "postgres://x"}
	base := []string{"HOME=/home/ci", "GITHUB_TOKEN=" + gatewayToken, "GH_TOKEN=" + gatewayToken}
	reserved := []string{"GITHUB_API_URL", "GITHUB_TOKEN", "GH_TOKEN"}
	tests := []struct {
		name    string
		opt     EnvOptions
		wantErr []string // the names the error must hold; nil: no error
	}{
		{"clash", EnvOptions{Reserved: reserved}, []string{"GH_TOKEN", "GITHUB_TOKEN"}},
		{"clash with no override", EnvOptions{Reserved: reserved, NoOverride: true}, []string{"GH_TOKEN", "GITHUB_TOKEN"}},
		{"clash after prefix", EnvOptions{Reserved: []string{"APP_DB_URL"}, Prefix: "APP_"}, []string{"APP_DB_URL"}},
		{"left out by only", EnvOptions{Reserved: reserved, Only: []string{"DB_URL"}}, nil},
		{"renamed by prefix", EnvOptions{Reserved: reserved, Prefix: "APP_"}, nil},
		{"nothing reserved", EnvOptions{}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, _, err := BuildEnv(base, secrets, tt.opt)
			if tt.wantErr == nil {
				if err != nil {
					t.Fatalf("got %v; want no error", err)
				}
				return
			}
			if err == nil {
				t.Fatal("got no error; want the clash refused")
			}
			for _, n := range tt.wantErr {
				if !strings.Contains(err.Error(), n) {
					t.Errorf("got %q; want %s named", err, n)
				}
			}
			if l := leaks(err.Error(), secrets); len(l) > 0 || strings.Contains(err.Error(), gatewayToken) {
				t.Errorf("error %q holds a value", err)
			}
		})
	}
}

// TestRunReservedClashStartsNothing: Run refuses the clash before the
// command starts (exit code 0 and an error, as for any bad configuration).
func TestRunReservedClashStartsNothing(t *testing.T) {
	started := filepath.Join(t.TempDir(), "started")
	code, err := Run(context.Background(), RunConfig{
		Command: []string{"touch", started}, Secrets: map[string]string{"GITHUB_TOKEN": "ghp_stored_value_0123456789"},
		BaseEnv: []string{"GITHUB_TOKEN=" + gatewayToken}, Env: EnvOptions{Reserved: []string{"GITHUB_TOKEN"}},
	})
	if code != 0 || err == nil || !strings.Contains(err.Error(), "GITHUB_TOKEN") {
		t.Errorf("Run: got %d, %v; want 0 and an error naming GITHUB_TOKEN", code, err)
	}
	if _, err := os.Stat(started); err == nil {
		t.Error("the command ran; want it refused before it starts")
	}
}
