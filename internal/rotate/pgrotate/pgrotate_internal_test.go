package pgrotate

import (
	"testing"

	"github.com/tokenward/tokenward/internal/rotate"
)

func TestPostgresCreateTakesTheRoleNotInUse(t *testing.T) {
	cfg := map[string]string{"dsn_secret": "p/e/ADMIN", "role": "app", "url": "postgres://db:5432/app"}
	pc, err := parsePGConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		current []byte // nil: the secret has no value yet
		want    string
	}{
		{"no value", nil, "app_a"},
		{"first role", pc.encode(pgCredential{User: "app_a", Password: "x"}), "app_b"},
		{"second role", pc.encode(pgCredential{User: "app_b", Password: "x"}), "app_a"},
		{"a role of its own", pc.encode(pgCredential{User: "legacy", Password: "x"}), "app_a"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v, err := (&Rotator{}).Create(t.Context(), &rotate.Request{Config: cfg, Current: tt.current})
			if err != nil {
				t.Fatal(err)
			}
			c, err := pc.decode(v)
			if err != nil || c.User != tt.want || len(c.Password) < 32 {
				t.Fatalf("got user %q (password %d bytes), %v; want %s with a fresh password", c.User, len(c.Password), err, tt.want)
			}
		})
	}
}
