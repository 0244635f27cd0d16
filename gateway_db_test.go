package tokenward

import "testing"

func TestGatewayGrant(t *testing.T) {
	tests := []struct {
		in      string
		wantErr bool
	}{
		{"gateway:pgprod", false},
		{"gateway:pg*", false},
		{"gateway:*", false},
		{"gateway:", true},
		{"gateway:PG", true},
		{"gateway:pg/prod/x", true},
		{"gateway:pg**", true},
		{"gateway:-pg", true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			g, err := ParseGrant(tt.in)
			if (err != nil) != tt.wantErr {
				t.Fatalf("ParseGrant(%q): got error %v; want error %v", tt.in, err, tt.wantErr)
			}
			if err != nil {
				if ErrorCode(err) != EINVALID {
					t.Fatalf("got code %q; want EINVALID", ErrorCode(err))
				}
				return
			}
			if g.String() != tt.in {
				t.Fatalf("String: got %q; want %q", g.String(), tt.in)
			}
		})
	}
}

func TestGatewayGrantAllows(t *testing.T) {
	tests := []struct {
		grant string
		route string
		want  bool
	}{
		{"gateway:pgprod", "pgprod", true},
		{"gateway:pgprod", "pgstaging", false},
		{"gateway:pg*", "pgstaging", true},
		{"gateway:*", "anything", true},
		{"admin:*/*/*", "pgprod", true},
		// A project admin does not use routes: a route is not in a project.
		{"admin:pgprod/*/*", "pgprod", false},
		{"read:*/*/*", "pgprod", false},
	}
	for _, tt := range tests {
		gs := Grants{MustParseGrant(tt.grant)}
		if got := gs.Allows(ActionGateway, "", "", tt.route); got != tt.want {
			t.Errorf("%s allows gateway %s: got %v; want %v", tt.grant, tt.route, got, tt.want)
		}
	}
	// A gateway grant reaches into no project and covers no secret.
	g := MustParseGrant("gateway:payments")
	if g.Allows(ActionRead, "payments", "prod", "X") || g.Allows(ActionAdmin, "payments", "prod", "X") {
		t.Errorf("gateway:payments allows a secret; want none")
	}
	if (Grants{g}).AllowsAnyIn(ActionGateway, "payments", "prod") {
		t.Errorf("gateway:payments allows something in payments/prod; want nothing")
	}
}

func TestValidateUpstream(t *testing.T) {
	for _, tt := range []struct {
		in string
		ok bool
	}{
		{"db.internal:5432", true},
		{"127.0.0.1:6543", true},
		{"[::1]:5432", true},
		{"db.internal", false},
		{":5432", false},
		{"db:0", false},
		{"db:99999", false},
		{"user@db:5432", false},
		{"db x:5432", false},
	} {
		if err := ValidateUpstream(tt.in); (err == nil) != tt.ok {
			t.Errorf("ValidateUpstream(%q): got %v; want ok=%v", tt.in, err, tt.ok)
		}
	}
}
