package manifest

import (
	"reflect"
	"strings"
	"testing"
	"time"
)

const dynamicManifest = `project: acme
environments: [staging, prod]
secrets:
  PG_ADMIN_URL:
dynamic:
  db:
    kind: postgres
    admin_secret: PG_ADMIN_URL
    group: app_migrate
    ttl: 15m
    max_ttl: 2h
    max_leases: 20
  reports:
    kind: postgres
    environments: [prod]
    admin_secret: PG_ADMIN_URL
    creation_sql: "CREATE ROLE {{name}} LOGIN PASSWORD {{password}} VALID UNTIL {{expiration}}; GRANT SELECT ON reports TO {{name}};"
    ttl: 1h
    skip_check: true
`

func TestParseDynamic(t *testing.T) {
	m, err := Parse("m.yaml", []byte(dynamicManifest))
	if err != nil {
		t.Fatal(err)
	}
	want := []*DynamicSource{
		{Name: "db", Pos: Pos{Line: 6, Column: 3}, Environments: []string{"staging", "prod"}, Kind: "postgres", AdminSecret: "PG_ADMIN_URL",
			Config: map[string]string{"group": "app_migrate"}, TTL: 15 * time.Minute, MaxTTL: 2 * time.Hour, MaxLeases: 20},
		{Name: "reports", Pos: Pos{Line: 13, Column: 3}, Environments: []string{"prod"}, Kind: "postgres", AdminSecret: "PG_ADMIN_URL",
			Config: map[string]string{"creation_sql": "CREATE ROLE {{name}} LOGIN PASSWORD {{password}} VALID UNTIL {{expiration}}; GRANT SELECT ON reports TO {{name}};"}, TTL: time.Hour, SkipCheck: true},
	}
	if !reflect.DeepEqual(m.Dynamic, want) {
		for i := range m.Dynamic {
			t.Errorf("got %+v", *m.Dynamic[i])
		}
		t.Fatalf("want %+v, %+v", *want[0], *want[1])
	}
	plan := m.Plan(State{DynamicSources: []string{"acme/staging/db"}})
	var got []string
	for _, a := range plan.Actions {
		if a.Kind == CreateDynamicSource {
			got = append(got, a.text())
		}
	}
	wantText := []string{
		"+ dynamic acme/prod/db: postgres, admin secret acme/prod/PG_ADMIN_URL, ttl 15m, max ttl 2h, group app_migrate (line 6)",
		"+ dynamic acme/prod/reports: postgres, admin secret acme/prod/PG_ADMIN_URL, ttl 1h, unchecked (line 13)",
	}
	if !reflect.DeepEqual(got, wantText) {
		t.Fatalf("plan: got %q; want %q", got, wantText)
	}
}

func TestParseDynamicErrors(t *testing.T) {
	head := "project: acme\nenvironments: [prod]\nsecrets:\n  DB:\ndynamic:\n"
	tests := []struct{ body, want string }{
		{"  db:\n    admin_secret: A\n    ttl: 15m\n", `dynamic db: missing key "kind"`},
		{"  db:\n    kind: mysql\n    admin_secret: A\n    ttl: 15m\n", `kind: "mysql" is not supported`},
		{"  db:\n    kind: postgres\n    ttl: 15m\n", `missing key "admin_secret"`},
		{"  db:\n    kind: postgres\n    admin_secret: a/b/C\n    ttl: 15m\n", `admin_secret: want the NAME of a secret`},
		{"  db:\n    kind: postgres\n    admin_secret: A\n", `missing key "ttl"`},
		{"  db:\n    kind: postgres\n    admin_secret: A\n    ttl: 2h\n    max_ttl: 1h\n", `max_ttl: shorter than ttl`},
		{"  db:\n    kind: postgres\n    admin_secret: A\n    ttl: 1h\n    max_leases: -1\n", `max_leases: want a whole number`},
		{"  db:\n    kind: postgres\n    admin_secret: A\n    ttl: 1h\n    password: x\n", `unknown key "password"`},
		{"  db:\n    kind: postgres\n    admin_secret: A\n    ttl: 1h\n    skip_check: maybe\n", `skip_check: want true or false`},
		{"  DB:\n    kind: postgres\n    admin_secret: A\n    ttl: 1h\n", `also declared under secrets`},
		{"  db-x:\n    kind: postgres\n", `not a valid name`},
	}
	for _, tt := range tests {
		_, err := Parse("m.yaml", []byte(head+tt.body))
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%q: got %v; want an error with %q", tt.body, err, tt.want)
		}
	}
}
