package scan

import (
	"strings"
	"testing"
)

// TestDetectorSamples runs the tps and fps of every detector rule (the
// assignment grammar, which the rules package cannot run) through the
// engine with the built-in rules.
func TestDetectorSamples(t *testing.T) {
	s := MustBuiltinScanner(t)
	n := 0
	for _, r := range s.Rules() {
		if r.Detector == "" {
			continue
		}
		n++
		t.Run(r.ID, func(t *testing.T) {
			// The rule alone: on its own tps another rule's finding would
			// win over its own.
			alone, err := New(&Config{Rules: []*Rule{r}}, Options{})
			if err != nil {
				t.Fatal(err)
			}
			if len(r.TPs) < 3 || len(r.FPs) < 3 {
				t.Errorf("got %d tps and %d fps; want at least 3 of each", len(r.TPs), len(r.FPs))
			}
			for _, tp := range r.TPs {
				if !hasRule(alone.ScanBytes("sample.txt", []byte(tp)), r.ID) {
					t.Errorf("tp: got no %s finding in %q", r.ID, tp)
				}
			}
			for _, fp := range r.FPs {
				if fs := s.ScanBytes("sample.txt", []byte(fp)); len(fs) > 0 {
					t.Errorf("fp: got %s (%s) in %q; want nothing", fs[0].RuleID, fs[0].Redacted, fp)
				}
			}
		})
	}
	if n < 2 {
		t.Errorf("got %d detector rules; want password-assignment and secret-assignment", n)
	}
}

func TestNameWords(t *testing.T) {
	tests := []struct{ name, want string }{
		{"DB_PASSWORD", "db password"},
		{"smtpPassword", "smtp password"},
		{"spring.datasource.password", "spring datasource password"},
		{"x-api-key", "x api key"},
		{"HTTPHeaderToken", "http header token"},
		{"ApiKey", "api key"},
		{"mot_de_passe", "mot de passe"},
		{"", ""},
	}
	for _, tt := range tests {
		if got := strings.Join(nameWords(tt.name, nil), " "); got != tt.want {
			t.Errorf("nameWords(%q) = %q; want %q", tt.name, got, tt.want)
		}
	}
}

func TestNameMeaning(t *testing.T) {
	tests := []struct{ name, want string }{
		{"DB_PASSWORD", DetectorPassword},
		{"passwort", DetectorPassword},
		{"ansible_become_pass", DetectorPassword},
		{"bindpw", DetectorPassword},
		{"MYSQL_ROOT_PASSWORD", DetectorPassword},
		{"bypass", ""},
		{"compass", ""},
		{"password_hash", ""},
		{"PASSWORD_MIN_LENGTH", ""},
		{"api_key", DetectorSecret},
		{"ApiKey", DetectorSecret},
		{"clientSecret", DetectorSecret},
		{"AUTH_TOKEN", DetectorSecret},
		{"key", ""},
		{"primary_key_column", ""},
		{"token_ttl", ""},
		{"TOKEN_HEADER", ""},
		{"monkey", ""},
		{"pass_fds", ""},
		{"TBN_GETINFOTIPW", ""},
		{"MAIL_PASS", DetectorPassword},
		{"keypass", DetectorPassword},
		{"S3ObjectKey", ""},
		{"credential_source", ""},
		{"password_encryption", ""},
		{"contraseña", DetectorPassword},
		{"db_hasło", DetectorPassword},
		{"encryption_key", DetectorSecret},
		{"STORAGE_ACCOUNT_KEY", DetectorSecret},
	}
	for _, tt := range tests {
		if got := nameMeaning(tt.name, nil); got != tt.want {
			t.Errorf("nameMeaning(%q) = %q; want %q", tt.name, got, tt.want)
		}
	}
}

func TestCredibleValue(t *testing.T) {
	tests := []struct {
		meaning, v string
		weak       bool
		want       bool
	}{
		{DetectorSecret, "rnmRPSgeoaPNv8c6DWgJ0vHGNG7h1ntY", false, true},
		{DetectorSecret, "CryptMsgDllCNGGenContentEncryptKey", false, false},
		{DetectorSecret, "pipeline_definition_s3_location", false, false},
		{DetectorSecret, "aws-codepipeline-s3-aws-codedeploy_linux.zip", false, false},
		{DetectorSecret, "EmbnjUtc2b1FhJwohOo9w9AkjqQ6pY4NERBhX3wi", false, true},
		{DetectorSecret, "0iFvDwyKOCMTSe3qWgxPqUYDYh75mM2v", false, true},
		{DetectorSecret, "serverlessrepo:applicationId", false, false},
		{DetectorSecret, "9f2c4e6a8b0d1f3e5a7c9b2d4f6e8a0c", false, true},
		{DetectorSecret, "orders-secret-name", false, false},
		{DetectorSecret, "rnmRPSgeoaPNv8c6", true, false},
		{DetectorPassword, "Zephyr#5982", false, true},
		{DetectorPassword, "scram-sha-256", false, false},
		{DetectorPassword, "${DB_PASSWORD}", false, false},
		{DetectorPassword, "changeme", false, false},
		{DetectorPassword, "cambiame", false, false},
		{DetectorPassword, "/run/secrets/db", false, false},
		{DetectorPassword, "ENC[AES256_GCM,data:x]", false, false},
		{DetectorPassword, "falcon_2196", false, true},
		{DetectorPassword, "user:passwd", false, false},
	}
	for _, tt := range tests {
		if got := credibleValue(tt.meaning, tt.v, tt.weak); got != tt.want {
			t.Errorf("credibleValue(%s, %q, %v) = %v; want %v", tt.meaning, tt.v, tt.weak, got, tt.want)
		}
	}
}

func TestShape(t *testing.T) {
	tests := []struct{ v, want string }{
		{"9f2c4e6a8b0d1f3e5a7c9b2d4f6e8a0c", "hex, 32 chars"},
		{"rnmRPSgeoaPNv8c6DWgJ0vHG", "alphanumeric, 24 chars"},
		{"uT6D+wpVffXbqbxLILQs/FJOXa==", "base64, 28 chars"},
		{"Zephyr#5982", "lower+upper+digit+symbol, 11 chars"},
		{"", ""},
	}
	for _, tt := range tests {
		if got := Shape(tt.v); got != tt.want {
			t.Errorf("Shape(%q) = %q; want %q", tt.v, got, tt.want)
		}
	}
}

// FuzzParseAssignment parses arbitrary input at every hit of a few
// keywords: no panic, offsets inside the input and in order, and a
// reported value never holds a line break.
func FuzzParseAssignment(f *testing.F) {
	for _, s := range []string{
		"password = \"Cobalt88cobalt?\"",
		"<password>Harbor#4471</password>",
		"$db = new PDO('mysql:host=db', 'shop', 'Tr4nsit!Q9x');",
		"- name: DB_PASSWORD\n  value: \"Thistle#7781\"",
		"<add key=\"ApiKey\" value=\"Hq3bN7xKp2LmR9vT4wYz8cD1fG6jS5aE\" />",
		"ALTER USER app IDENTIFIED BY \"Quasar55nimbus&\";",
		"{\\\"password\\\":\\\"x\\\"}",
		"password",
		"key=",
		"machine h login u password p",
	} {
		f.Add(s)
	}
	kws := []string{"pass", "key", "token", "secret", "auth", "identified", "pdo", "pw"}
	d, err := newKeywordDFA(kws)
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, s string) {
		data := []byte(s)
		d.scan(data, func(k, hs, he int) {
			for _, code := range []bool{false, true} {
				a, ok := parseAssignment(data, hs, he, code, nil)
				if !ok {
					continue
				}
				if a.nameStart < 0 || a.nameStart >= a.nameEnd || a.nameEnd > len(data) ||
					a.valStart < 0 || a.valStart > a.valEnd || a.valEnd > a.end || a.end > len(data) ||
					a.matchStart < 0 || a.matchStart > a.valStart {
					t.Fatalf("bad offsets %+v for %q", a, s)
				}
				if strings.ContainsAny(s[a.valStart:a.valEnd], "\n") {
					t.Fatalf("value %q spans lines in %q", s[a.valStart:a.valEnd], s)
				}
				_ = credibleValue(a.meaning, s[a.valStart:a.valEnd], a.weak)
			}
		})
	})
}

// TestAssignmentFindingsRedacted scans credentials the assignment grammar
// finds and renders every report format: the value never appears, the name
// and shape do.
func TestAssignmentFindingsRedacted(t *testing.T) {
	s := MustBuiltinScanner(t)
	secrets := []string{"Harbor#4471xq", "Quasar55nimbus&", "Hq3bN7xKp2LmR9vT4wYz8cD1fG6jS5aE"}
	data := "db:\n  passwort: " + secrets[0] + "\n" +
		"ALTER USER app IDENTIFIED BY \"" + secrets[1] + "\";\n" +
		"<add key=\"ApiKey\" value=\"" + secrets[2] + "\" />\n"
	fs := s.ScanBytes("conf/app.txt", []byte(data))
	if len(fs) != 3 {
		t.Fatalf("got %d findings; want 3: %v", len(fs), fs)
	}
	wantNames := []string{"passwort", "IDENTIFIED BY", "ApiKey"}
	for i, f := range fs {
		if f.Name != wantNames[i] || f.Shape == "" {
			t.Errorf("finding %d: got name %q, shape %q; want name %q and a shape", i, f.Name, f.Shape, wantNames[i])
		}
	}
	for _, format := range Formats {
		var b strings.Builder
		if err := WriteReport(&b, format, fs, ReportInfo{}); err != nil {
			t.Fatal(err)
		}
		for _, sec := range secrets {
			if strings.Contains(b.String(), sec[4:]) {
				t.Errorf("%s report holds the value %.4s… in plaintext", format, sec)
			}
		}
		if format == "text" && !strings.Contains(b.String(), "[name passwort; lower+upper+digit+symbol, 13 chars; entropy") {
			t.Errorf("text report: got %q; want the name, shape and entropy of the first finding", b.String())
		}
	}
}

// A name that holds the value (which no real assignment has) is dropped
// rather than shown beside the redacted value.
func TestFindingNameNeverHoldsTheSecret(t *testing.T) {
	s := MustBuiltinScanner(t)
	w := s.NewWorker()
	data := []byte("x = Zq8Lm3Vt9Wc2Xb7N")
	r := s.Rules()[0]
	w.consider(r, "a.txt", data, 0, len(data), 4, len(data), nil, "prefix_Zq8Lm3Vt9Wc2Xb7N")
	clear(w.seen) // the same match again, on purpose
	w.consider(r, "a.txt", data, 0, len(data), 4, len(data), nil, "x")
	if len(w.out) != 2 {
		t.Fatalf("got %d findings; want 2", len(w.out))
	}
	if got := w.out[0].Name; got != "" {
		t.Errorf("got name %q; want it dropped", got)
	}
	if got := w.out[1].Name; got != "x" {
		t.Errorf("got name %q; want x", got)
	}
}

// FuzzScanAssignments runs the built-in rules, assignment grammar
// included, over arbitrary input as code and as configuration: no panic,
// every undecoded secret lies in the input on the line reported, and no
// name holds its secret.
func FuzzScanAssignments(f *testing.F) {
	f.Add("password = \"Cobalt88cobalt?\"\n- name: API_TOKEN\n  value: Hq3bN7xKp2LmR9vT4wYz8cD1fG6jS5aE\n")
	f.Add("define('DB_PASSWORD', 'granite@2046');\n$db = new PDO('mysql:host=db', 'u', 'Tr4nsit!Q9x');")
	f.Add("<password>Harbor#4471</password>\nif (pwd != \"Gr4nite!Kx9Lynx\") {}")
	s := MustBuiltinScanner(f)
	f.Fuzz(func(t *testing.T, in string) {
		for _, p := range []string{"a.py", "a.yaml"} {
			for _, fd := range s.ScanBytes(p, []byte(in)) {
				sec := fd.Secret()
				if fd.Name != "" && sec != "" && strings.Contains(fd.Name, sec) {
					t.Fatalf("%s: name %q holds the secret", fd.RuleID, fd.Name)
				}
				if fd.Decoded != "" || sec == "" {
					continue
				}
				lines := strings.Split(in, "\n")
				if fd.Line < 1 || fd.Line > len(lines) {
					t.Fatalf("%s: line %d outside the input", fd.RuleID, fd.Line)
				}
				if !strings.Contains(in, sec) {
					t.Fatalf("%s: secret not in the input", fd.RuleID)
				}
			}
		}
	})
}
