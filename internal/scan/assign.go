package scan

import (
	"bytes"
	"path"
	"strings"
	"sync"
)

// The assignment grammar: a hand-written parser, run at keyword hits, that
// finds name → value pairs the way credentials are written in code and
// configuration of most languages and formats, and judges the value by the
// name's meaning. It is what the detector rules (`detector = "password"`
// or `"secret"` in a rule file) run instead of a regex:
//
//	password = "v"   password: v   "password": "v"   'password' => 'v'
//	$password = "v"  export PASSWORD=v   ENV PASSWORD v   --password v
//	<password>v</password>   password="v" (XML attribute)
//	setPassword("v")   .password("v")   {"password", "v"}
//	SetBasicAuth("user", "v")   auth=("user", "v")   new PDO(dsn, "user", "v")
//	Server=x;Password=v;   ?user=u&password=v   (key=value inside a string)
//	<add key="ApiKey" value="v"/>   - name: API_TOKEN / value: v
//	IDENTIFIED BY 'v'   WITH PASSWORD 'v'   ConvertTo-SecureString "v"
//
// Names are split into words (snake, kebab, dotted, camelCase), so a name's
// meaning does not depend on its naming style.

// Detector kinds a rule may name in its `detector` field.
const (
	DetectorPassword = "password"
	DetectorSecret   = "secret"
)

// assignment is one name → value pair found in a buffer: offsets of the
// name and of the value (without its quotes).
type assignment struct {
	nameStart, nameEnd int
	valStart, valEnd   int
	end                int  // end of the whole construct (after a closing quote)
	matchStart         int  // start of the text allowlists see as the match
	weak               bool // a key name without a credential qualifier: the value must look random
	name               string
	quoted             bool
	meaning            string // DetectorPassword, DetectorSecret or ""
}

const (
	maxNameLen  = 96
	maxValueLen = 400
)

func isNameByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-' || c == '.' ||
		c >= 0x80 // UTF-8: contraseña, hasło
}

func isQuote(c byte) bool { return c == '"' || c == '\'' || c == '`' }

func isBlank(c byte) bool { return c == ' ' || c == '\t' }

func isCodePath(p string) bool { return sets().codeExt[strings.ToLower(path.Ext(p))] }

// isTestPath reports files that hold fixtures by convention: the assignment
// grammar, which has no format to check a value against, skips them.
func isTestPath(p string) bool {
	l := strings.ToLower(p)
	base := path.Base(l)
	if strings.HasSuffix(base, "_test.go") || strings.HasPrefix(base, "test_") || strings.Contains(base, "_test.") ||
		strings.Contains(base, ".test.") || strings.Contains(base, ".spec.") || strings.Contains(base, "_spec.") ||
		strings.HasSuffix(base, "test.java") || strings.HasSuffix(base, "tests.cs") || strings.HasSuffix(base, "test.kt") {
		return true
	}
	for _, d := range []string{"test/", "tests/", "testdata/", "__tests__/", "spec/", "fixtures/", "fixture/", "mocks/", "testing/"} {
		if strings.HasPrefix(l, d) || strings.Contains(l, "/"+d) {
			return true
		}
	}
	return false
}

// nameWords splits a name into lower-case words: snake_case, kebab-case,
// dotted.names, camelCase and HTTPHeader styles.
func nameWords(name string, out []string) []string {
	out = out[:0]
	start := -1
	flush := func(i int) {
		if start >= 0 && i > start {
			out = append(out, strings.ToLower(name[start:i]))
		}
		start = -1
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		isUp := c >= 'A' && c <= 'Z'
		isLow := c >= 'a' && c <= 'z' || c >= 0x80 // UTF-8 letters: contraseña, hasło
		isDig := c >= '0' && c <= '9'
		if !isUp && !isLow && !isDig {
			flush(i)
			continue
		}
		if start < 0 {
			start = i
			continue
		}
		p := name[i-1]
		switch {
		case isUp && (p >= 'a' && p <= 'z' || p >= '0' && p <= '9'):
			flush(i) // camelCase, S3Object
			start = i
		case isUp && p >= 'A' && p <= 'Z' && i+1 < len(name) && name[i+1] >= 'a' && name[i+1] <= 'z':
			flush(i) // HTTPHeader → http, header
			start = i
		}
	}
	flush(len(name))
	return out
}

// wordSets are the grammar's vocabularies, built on first use (package
// initialisation does no work: TestStartupDoesNoEagerWork).
type wordSets struct {
	password        map[string]bool // name words meaning a password
	shortPassword   map[string]bool // ... only as a name's last word (MAIL_PASS, not pass_fds)
	passPrefix      map[string]bool // what joins pass or pw into one word (smtppass, bindpw)
	secret          map[string]bool // name words meaning a secret, token or key
	keyQualifier    map[string]bool // words that make "key" a credential: api key, signing key
	notSecret       map[string]bool // words saying a name is about a credential: token_ttl, password_hash
	passwordSetting map[string]bool // password settings, not passwords: password_encryption
	keyDeny         map[string]bool // words making NAME_KEY a lookup key: primary_key, cache_key
	weakValue       map[string]bool // values that say "no real password here"
	codeExt         map[string]bool // languages where an unquoted value is an expression
}

var sets = sync.OnceValue(func() *wordSets {
	return &wordSets{
		password: wordSet(`
	password passwd pass pwd pw passphrase pword passwort passwords kennwort contrasena
	contraseña clave senha wachtwoord haslo hasło parola lozinka salasana losenord
	adgangskode passord heslo jelszo sifre mdp motdepasse passe`),
		shortPassword: wordSet(`pass pw`),
		passPrefix: wordSet(`
	smtp mail db root admin user become ssh sudo key irc ftp proxy redis mysql ldap master bind
	store trust vault sa app web api`),
		secret: wordSet(`
	secret secrets token apikey secretkey accesskey privatekey authtoken accesstoken
	apitoken clientsecret credential credentials bearer signingkey masterkey encryptionkey
	authkey appsecret apisecret secreto secrete privkey`),
		keyQualifier: wordSet(`
	api access secret private client app auth master signing sign encryption encrypt license
	account subscription consumer service shared session hmac webhook aes crypto jwt storage
	admin write deploy integration merchant partner developer dev mgmt management ingest
	ingestion server primary secondary cipher priv db database application`),
		notSecret: wordSet(`
	hash hashed digest checksum sha sha1 sha256 md5 salt header name names type path file
	filename dir url uri endpoint prefix suffix length len size ttl expiry expires
	expiration lifetime timeout format field id ids policy min max regex pattern label
	placeholder prompt env var param parameter ref arn version count enabled required mode
	algorithm alg kind public pub fingerprint encrypted input validator validators hasher
	hashers reset confirm confirmation location store provider class method scope scopes
	issuer audience kid index key_id column table message msg error err text title help
	description desc usage example sample test mock fake dummy command cmd script handler
	callback request response event authenticity csrf xsrf nonce captcha csrftoken func
	function fn oid source stdin change starting next continuation pagination paging page sync
	result results marker attr attribute`),
		passwordSetting: wordSet(`
	encryption algorithm algo strength complexity rules rule hashing storage manager reset`),
		keyDeny: wordSet(`
	primary foreign cache sort partition map lookup object s3 public pub idempotency hash
	row range translation i18n unique composite natural table column field dict registry
	group shard routing message list item index search query hot short shortcut keyboard
	press cursor next prev last first config setting settings metadata label tag string json
	yaml my this new old other local global ssh gpg pgp host dedup dedupe bucket event
	context ctx state store redis memcache lock sharding group_by order version schema route
	locale lang language theme color style type named unnamed default env var property prop
	i k x a b the by as on`),
		weakValue: wordSet(`
	password passwd secret changeit changeme admin root guest default required optional
	string true false null none nil undefined empty`),
		codeExt: wordSet(`.go .java .kt .kts .scala .js .jsx .mjs .cjs .ts .tsx .py .rb .php .cs .c .h .cc .cpp .hpp .rs .swift .m .dart .lua .groovy .ps1 .psm1 .ipynb .vue .svelte .r .pl .ex .exs .clj .fs .vb .sql .gradle .pyi`),
	}
})

// wordSet makes a set of the blank-separated words in list.
func wordSet(list string) map[string]bool {
	m := map[string]bool{}
	for _, w := range strings.Fields(list) {
		m[w] = true
	}
	return m
}

// passwordJoined are password words found inside one-word names
// (dbpassword, SMTPPASS, bindpw).
var passwordJoined = []string{"password", "passwd", "passphrase", "passwort", "pwd"}

func hasPasswordWord(words []string) bool {
	for i, w := range words {
		last := i == len(words)-1
		if sets().password[w] && (last || !sets().shortPassword[w]) {
			return true // pass and pw only end a name: MAIL_PASS, not pass_fds
		}
		for _, j := range passwordJoined {
			if strings.Contains(w, j) {
				return true
			}
		}
		// SMTPPASS, rootpw, keypass as one word.
		for _, suf := range []string{"pass", "pw"} {
			if last && strings.HasSuffix(w, suf) && sets().passPrefix[strings.TrimSuffix(w, suf)] {
				return true
			}
		}
	}
	return false
}

// nameMeaning classifies a name: DetectorPassword, DetectorSecret or "".
func nameMeaning(name string, buf []string) string {
	words := nameWords(name, buf)
	if len(words) == 0 {
		return ""
	}
	for _, w := range words {
		if sets().notSecret[w] {
			return ""
		}
	}
	if hasPasswordWord(words) {
		for _, w := range words {
			if sets().passwordSetting[w] {
				return "" // password_encryption, password_algorithm: settings
			}
		}
		return DetectorPassword
	}
	for i, w := range words {
		if sets().secret[w] {
			return DetectorSecret
		}
		if strings.HasSuffix(w, "secret") || strings.HasSuffix(w, "token") && w != "csrftoken" || strings.HasSuffix(w, "apikey") {
			return DetectorSecret
		}
		if w == "key" && i > 0 && sets().keyQualifier[words[i-1]] {
			return DetectorSecret
		}
		if strings.HasSuffix(w, "key") && len(w) > 3 && sets().keyQualifier[w[:len(w)-3]] {
			return DetectorSecret // apikey, accesskey, signingkey as one word
		}
	}
	return ""
}

// lastWordMeans reports whether a name's last word carries its meaning:
// db_password, api_key, but not PasswordField.
func lastWordMeans(name string, buf []string) bool {
	words := nameWords(name, buf)
	if len(words) == 0 {
		return false
	}
	w := words[len(words)-1]
	return sets().password[w] || sets().secret[w] || w == "key" || strings.HasSuffix(w, "password") ||
		strings.HasSuffix(w, "secret") || strings.HasSuffix(w, "token")
}

// weakKeyName reports NAME_KEY where NAME is not a qualifier and not a
// lookup word: STRIPE_KEY, mailgunKey. Its value must look random.
func weakKeyName(name string, buf []string) bool {
	words := nameWords(name, buf)
	n := len(words)
	if n < 2 || words[n-1] != "key" {
		return false
	}
	for _, w := range words[:n-1] {
		if sets().keyDeny[w] || sets().notSecret[w] {
			return false
		}
	}
	return true
}

// parseAssignment parses the assignment around a keyword hit at [hs, he):
// the name holding the hit, an operator, and the value. code says the
// buffer is source code, where unquoted values are expressions.
func parseAssignment(data []byte, hs, he int, code bool, buf []string) (assignment, bool) {
	var a assignment
	n := len(data)
	// The name: the run of name bytes holding the hit.
	s := hs
	for s > 0 && isNameByte(data[s-1]) && hs-s < maxNameLen {
		s--
	}
	e := he
	for e < n && isNameByte(data[e]) && e-he < maxNameLen {
		e++
	}
	if s > 0 && data[s-1] == '\\' && s < e && (data[s] == 'n' || data[s] == 't' || data[s] == 'r') {
		s++ // "\npassword = …" in a string literal
	}
	for s < e && (data[s] == '.' || data[s] == '-') {
		s++ // a leading "--" of a flag, ".password(" of a call
	}
	for e > s && data[e-1] == '.' {
		e--
	}
	if s >= e {
		return a, false
	}
	a.nameStart, a.nameEnd = s, e
	a.name = string(data[s:e])
	lower := strings.ToLower(a.name)
	switch {
	case lower == "identified" && hasPrefixFold(data[e:], " by"):
		a.name, a.nameEnd, e = "IDENTIFIED BY", e+3, e+3
		a.meaning = DetectorPassword
		return spaceQuotedValue(data, a, e)
	case lower == "convertto-securestring":
		a.meaning = DetectorPassword
		return spaceQuotedValue(data, a, e)
	}
	var before byte = '\n'
	if s > 0 {
		before = data[s-1]
	}
	a.meaning = nameMeaning(a.name, buf)
	i := e
	nameQuoted := false
	if isQuote(before) && i < n && data[i] == before {
		nameQuoted = true
		i++
	} else if before == '"' && i+1 < n && data[i] == '\\' && data[i+1] == '"' {
		nameQuoted = true // \"password\": in an escaped string
		i += 2
	}
	// Argument-position credentials: SetBasicAuth("u", "p"), new PDO(dsn, "u", "p").
	a.matchStart = s
	if keyField(data, s, before) {
		// <add key="ApiKey" value="…"/>, - name: API_TOKEN / value: …
		return indirectValue(data, a, buf)
	}
	if argN := credentialArg(a.name, buf); argN > 0 {
		j := i
		for j < n && isBlank(data[j]) {
			j++
		}
		if j < n && data[j] == '=' {
			j++
			for j < n && isBlank(data[j]) {
				j++
			}
		}
		if j < n && data[j] == '(' {
			if vs, ve, end, ok := nthStringArg(data, j+1, argN); ok {
				a.meaning = DetectorPassword
				a.valStart, a.valEnd, a.end, a.quoted = vs, ve, end, true
				a.matchStart = vs - 1 // the call's other arguments are not the allowlists' business
				return a, true
			}
		}
	}
	if a.meaning == "" && weakKeyName(a.name, buf) {
		a.meaning, a.weak = DetectorSecret, true
	}
	if a.meaning == "" {
		return a, false
	}
	if i+1 < n && data[i] == '[' && data[i+1] == ']' {
		i += 2 // my_password[] = "v" (Objective-C, PHP)
	}
	blanks := 0
	for i < n && isBlank(data[i]) && blanks <= 10 {
		i++
		blanks++
	}
	if i >= n {
		return a, false
	}
	var op byte
	switch c := data[i]; c {
	case '=':
		op = '='
		i++
		if i < n && data[i] == '=' {
			// password == "v": a hard-coded credential checked in code.
			// Only a string literal counts (below).
			op = 'c'
			for i < n && data[i] == '=' {
				i++
			}
		} else if i < n && data[i] == '~' {
			return a, false // =~
		}
		if i < n && data[i] == '>' {
			i++ // =>
		}
	case ':':
		op = ':'
		i++
		if i < n && data[i] == '=' {
			i++
		} else if i < n && data[i] == ':' {
			return a, false // Rust/C++ paths
		} else if i < n && !isBlank(data[i]) && !isQuote(data[i]) && data[i] != '\\' {
			return a, false // a:b (URLs, times) needs a blank or quote after ':'
		} else if code {
			i = skipTypeAnnotation(data, i) // apiKey: string = "v", API_TOKEN: &str = "v"
		}
	case '!':
		if i+1 < n && data[i+1] == '=' {
			op, i = 'c', i+2 // password != "v"
			if i < n && data[i] == '=' {
				i++
			}
		} else {
			return a, false
		}
	case '?':
		if i+1 < n && data[i+1] == '=' {
			op, i = '=', i+2
		} else {
			return a, false
		}
	case ',':
		// {"password", "v"}: the quoted name is a credential's own name,
		// not one item of a list of names ('PasswordField', 'x').
		if !nameQuoted || !lastWordMeans(a.name, buf) {
			return a, false
		}
		op = ','
		i++
	case '(':
		op = '('
		i++
	case '>':
		if before != '<' || nameQuoted {
			return a, false
		}
		// <password>v</password>
		vs := i + 1
		ve := vs
		for ve < n && data[ve] != '<' && data[ve] != '\n' && ve-vs < maxValueLen {
			ve++
		}
		if ve+1 >= n || data[ve] != '<' || data[ve+1] != '/' {
			return a, false
		}
		a.valStart, a.valEnd, a.end = vs, ve, ve
		return a, true
	default:
		// A blank as the operator: ENV NAME value, --password value, netrc.
		if blanks == 0 || nameQuoted {
			return a, false
		}
		op = ' '
	}
	for j := 0; j < 10 && i < n && isBlank(data[i]); j++ {
		i++
	}
	if i >= n {
		return a, false
	}
	// The value.
	q := byte(0)
	escaped := false
	switch c := data[i]; {
	case isQuote(c):
		q = c
		i++
	case c == '\\' && i+1 < n && (data[i+1] == '"' || data[i+1] == '\''):
		q, escaped = data[i+1], true
		i += 2
	case (c == '@' || c == 'r' || c == 'b' || c == 'u' || c == 'R') && i+1 < n && isQuote(data[i+1]) && op != ' ':
		q = data[i+1]
		i += 2
	}
	if q == 0 {
		if op == ',' || op == '(' || op == 'c' {
			return a, false // f(password, x), {"password", x}, password == x: not literals
		}
		if code && !strings.ContainsRune(";\"'?&", rune(before)) {
			return a, false // an expression; unless inside a string: "Server=x;Password=v"
		}
		if code && op == ' ' {
			return a, false
		}
		vs := i
		for i < n && i-vs < maxValueLen {
			c := data[i]
			if c <= ' ' || c == ';' || c == ',' && op != ' ' || c == '&' && (before == '?' || before == '&') || c == '"' || c == '\'' || c == '`' ||
				c == '<' || c == ')' || c == ']' || c == '}' || c == '\\' {
				break
			}
			i++
		}
		a.valStart, a.valEnd, a.end = vs, i, i
		if op == ' ' {
			// A blank operator is a directive (ENV NAME v, bindpw v, a
			// netrc line) or a flag (--password v), not prose: the name
			// leads its line or follows a dash, the value ends it (netrc
			// lines go on).
			if before != '-' && !leadsLine(data, s) && !isNetrcLine(data, s) {
				return a, false
			}
			j := i
			for j < n && isBlank(data[j]) {
				j++
			}
			if j < n && data[j] != '\n' && data[j] != '\r' && before != '-' && !isNetrcLine(data, s) {
				return a, false
			}
		}
		return a, a.valEnd > a.valStart
	}
	vs := i
	for i < n && data[i] != '\n' && i-vs < maxValueLen {
		c := data[i]
		if escaped {
			if c == '\\' && i+1 < n && data[i+1] == q {
				break
			}
		} else if c == q {
			break
		} else if c == '\\' {
			i++ // an escaped character
		}
		i++
	}
	if i >= n || data[i] == '\n' || i-vs >= maxValueLen {
		return a, false
	}
	a.valStart, a.valEnd, a.quoted = vs, i, true
	a.end = i + 1
	if escaped {
		a.end++
	}
	if op == ',' {
		// {"password", "v"} closes after the value; a list of names goes on.
		j := a.end
		for j < n && isBlank(data[j]) {
			j++
		}
		if j >= n || data[j] != '}' && data[j] != ')' && data[j] != ']' {
			return a, false
		}
	}
	if op == ' ' && before != '-' && !leadsLine(data, s) && !proseCredential(data, s, lower) {
		return a, false // password "v" as a directive (Ruby, nginx), not "pass `x`" in prose
	}
	return a, true
}

func hasPrefixFold(b []byte, p string) bool {
	return len(b) >= len(p) && strings.EqualFold(string(b[:len(p)]), p)
}

// spaceQuotedValue takes a quoted value after blanks: IDENTIFIED BY 'v',
// ConvertTo-SecureString "v".
func spaceQuotedValue(data []byte, a assignment, i int) (assignment, bool) {
	n := len(data)
	for j := 0; j < 10 && i < n && isBlank(data[i]); j++ {
		i++
	}
	return a.quotedValue(data, i)
}

// quotedAt returns the bounds of the string literal opening at data[i]
// (a quote), closed on the same line.
func quotedAt(data []byte, i int) (vs, ve int, ok bool) {
	if i >= len(data) || !isQuote(data[i]) {
		return 0, 0, false
	}
	vs = i + 1
	j := bytes.IndexByte(data[vs:min(len(data), vs+maxValueLen)], data[i])
	if j < 0 || bytes.IndexByte(data[vs:vs+j], '\n') >= 0 {
		return 0, 0, false
	}
	return vs, vs + j, true
}

// quotedValue takes the string literal at data[i] as the value.
func (a assignment) quotedValue(data []byte, i int) (assignment, bool) {
	vs, ve, ok := quotedAt(data, i)
	if !ok {
		return a, false
	}
	a.valStart, a.valEnd, a.end, a.quoted = vs, ve, ve+1, true
	return a, true
}

// credentialArg says which string argument of a call named lower is a
// password: 2 for (user, password) calls, 3 for (dsn, user, password).
func credentialArg(name string, buf []string) int {
	switch strings.ToLower(name) {
	case "pdo", "mysqli", "mysql_connect", "mysqli_connect":
		return 3
	}
	for _, w := range nameWords(name, buf) {
		switch w {
		case "basicauth", "setbasicauth", "basic", "networkcredential", "pscredential", "login", "auth", "creds", "credentials", "credential", "usernamepasswordcredentials", "usernamepasswordauthenticationtoken":
			return 2
		}
	}
	return 0
}

// nthStringArg returns the nth (1-based) argument of a call whose arguments
// start at i, if every argument up to it is a string literal (Some("v") and
// (ConvertTo-SecureString "v" …) count as literals too).
func nthStringArg(data []byte, i, nth int) (vs, ve, end int, ok bool) {
	n := len(data)
	for k := 1; k <= nth; k++ {
		for i < n && isBlank(data[i]) {
			i++
		}
		if hasPrefixFold(data[i:], "Some(") {
			i += 5
		}
		s, e, ok := quotedAt(data, i)
		if !ok {
			return 0, 0, 0, false
		}
		if k == nth {
			return s, e, e + 1, true
		}
		i = e + 1
		if i < n && data[i] == ')' {
			i++ // Some("u")
		}
		for i < n && isBlank(data[i]) {
			i++
		}
		if i >= n || data[i] != ',' {
			return 0, 0, 0, false
		}
		i++
	}
	return 0, 0, 0, false
}

// skipTypeAnnotation returns the offset after "Type =" when data[i:] is a
// type annotation followed by an assignment (TypeScript, Kotlin, Rust,
// Swift, Python), else i.
func skipTypeAnnotation(data []byte, i int) int {
	j := i
	for j < len(data) && isBlank(data[j]) {
		j++
	}
	t := j
	for j < len(data) && j-t < 48 && (isNameByte(data[j]) || strings.IndexByte("<>[]&?*' ", data[j]) >= 0) {
		j++
	}
	if j == t || j+1 >= len(data) || data[j] != '=' || data[j+1] == '=' || data[j+1] == '>' {
		return i
	}
	return j + 1
}

// proseCredential reports a quoted value after a blank that a sentence or
// statement gives as a password: "password `v`", WITH PASSWORD 'v'. Only
// the full words count (not pass or pw, which prose uses as verbs).
func proseCredential(data []byte, s int, lower string) bool {
	if strings.Contains(lower, "password") || strings.Contains(lower, "passwd") || strings.Contains(lower, "passphrase") {
		return true
	}
	ls := bytes.LastIndexByte(data[:s], '\n') + 1
	return bytes.HasSuffix(bytes.ToLower(bytes.TrimRight(data[ls:s], " \t")), []byte("with"))
}

// leadsLine reports whether only indentation and a directive word (ENV,
// ARG, export, set) precede offset s on its line.
func leadsLine(data []byte, s int) bool {
	ls := bytes.LastIndexByte(data[:s], '\n') + 1
	lead := string(bytes.TrimSpace(data[ls:s]))
	switch lead {
	case "", "ENV", "ARG", "export", "set", "SET", "setenv", "#define", "define":
		return true
	}
	return false
}

// isNetrcLine reports whether the line holding off reads "machine … login
// … password …", where a blank operator is followed by more words.
func isNetrcLine(data []byte, off int) bool {
	ls := bytes.LastIndexByte(data[:off], '\n') + 1
	line := data[ls:off]
	return bytes.Contains(line, []byte("machine ")) || bytes.Contains(line, []byte("login "))
}

// keyField reports whether the name at s is the value of a key or name
// field: <add key="ApiKey" …>, - name: API_TOKEN, {"key": "password", …}.
func keyField(data []byte, s int, before byte) bool {
	if !isQuote(before) && !isBlank(before) {
		return false
	}
	ls := bytes.LastIndexByte(data[:s], '\n') + 1
	head := bytes.TrimRight(data[ls:s], "\"' \t")
	if len(head) == 0 || head[len(head)-1] != ':' && head[len(head)-1] != '=' {
		return false
	}
	head = bytes.TrimRight(head[:len(head)-1], "\"' \t")
	e := len(head)
	b := e
	for b > 0 && isNameByte(head[b-1]) {
		b--
	}
	w := strings.ToLower(string(head[b:e]))
	return w == "key" || w == "name"
}

// indirectValue finds the value field beside a name held in a key or name
// field: value="v" on the same line or value: v on the next.
func indirectValue(data []byte, a assignment, buf []string) (assignment, bool) {
	if a.meaning == "" {
		return a, false
	}
	// The value field: on this line or the next.
	n := len(data)
	end := a.nameEnd
	stop := bytes.IndexByte(data[end:min(n, end+512)], '\n')
	if stop >= 0 {
		if next := bytes.IndexByte(data[end+stop+1:min(n, end+stop+1+512)], '\n'); next >= 0 {
			stop = stop + 1 + next
		} else {
			stop = min(n, end+512) - end
		}
	} else {
		stop = min(n, end+512) - end
	}
	region := data[end : end+stop]
	k := bytes.Index(region, []byte("value"))
	if k < 0 {
		return a, false
	}
	i := end + k + len("value")
	if i < n && (data[i] == '"' || data[i] == '\'') {
		i++
	}
	for i < n && isBlank(data[i]) {
		i++
	}
	if i >= n || data[i] != '=' && data[i] != ':' {
		return a, false
	}
	i++
	for i < n && isBlank(data[i]) {
		i++
	}
	if i >= n {
		return a, false
	}
	if isQuote(data[i]) {
		var ok bool
		if a, ok = a.quotedValue(data, i); !ok {
			return a, false
		}
	} else {
		vs := i
		for i < n && data[i] > ' ' && data[i] != ',' && data[i] != '}' {
			i++
		}
		a.valStart, a.valEnd, a.end = vs, i, i
	}
	a.matchStart = a.valStart
	return a, a.valEnd > a.valStart
}

// valueClasses counts the character classes in v: lower, upper, digit,
// other (symbols).
func valueClasses(v string) (lower, upper, digit, other bool) {
	for i := 0; i < len(v); i++ {
		c := v[i]
		switch {
		case c >= 'a' && c <= 'z':
			lower = true
		case c >= 'A' && c <= 'Z':
			upper = true
		case c >= '0' && c <= '9':
			digit = true
		default:
			other = true
		}
	}
	return
}

// Shape describes a value without revealing it: its alphabet and length,
// e.g. "hex, 40 chars" or "lower+upper+digit+symbol, 13 chars".
func Shape(v string) string {
	if v == "" {
		return ""
	}
	hex, b64, b64url := true, true, true
	for i := 0; i < len(v); i++ {
		c := v[i]
		alnum := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
		if !isHex(c) {
			hex = false
		}
		if !alnum && c != '+' && c != '/' && c != '=' {
			b64 = false
		}
		if !alnum && c != '-' && c != '_' && c != '=' {
			b64url = false
		}
	}
	lo, up, dg, ot := valueClasses(v)
	var kind string
	switch {
	case hex && len(v) >= 16:
		kind = "hex"
	case !ot:
		kind = "alphanumeric"
	case b64 && len(v) >= 16:
		kind = "base64"
	case b64url && len(v) >= 16:
		kind = "base64url"
	default:
		var parts []string
		for _, p := range []struct {
			ok   bool
			name string
		}{{lo, "lower"}, {up, "upper"}, {dg, "digit"}, {ot, "symbol"}} {
			if p.ok {
				parts = append(parts, p.name)
			}
		}
		kind = strings.Join(parts, "+")
	}
	return kind + ", " + itoa(len(v)) + " chars"
}

func itoa(n int) string {
	if n == 0 {
		return "0"
	}
	var b [20]byte
	i := len(b)
	for n > 0 {
		i--
		b[i] = byte('0' + n%10)
		n /= 10
	}
	return string(b[i:])
}

// identifierLike reports a value written as a name is
// (CryptMsgDllCNGGenContentEncryptKey, orders-secret-name,
// pipeline_definition_s3_location, Ipv6CidrAssociations): identifier
// characters that split into two or more words, none of one letter and
// half of them pronounceable. Random keys split into one-letter and
// vowelless pieces, and mix digits into words.
func identifierLike(v string) bool {
	for i := 0; i < len(v); i++ {
		c := v[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			return false
		}
	}
	var buf [16]string
	words := nameWords(v, buf[:0])
	if len(words) < 2 {
		return false
	}
	good := 0
	for _, w := range words {
		if len(w) < 2 || !wordThenDigits(w) {
			return false
		}
		if len(w) >= 3 && strings.ContainsAny(w, "aeiouy") {
			good++
		}
	}
	return 2*good >= len(words)
}

// wordThenDigits reports letters followed by digits only (s3, ipv6,
// content), as in names; random keys mix them (utc2b1).
func wordThenDigits(w string) bool {
	i := 0
	for i < len(w) && (w[i] < '0' || w[i] > '9') {
		i++
	}
	if i == 0 {
		return false
	}
	for ; i < len(w); i++ {
		if w[i] < '0' || w[i] > '9' {
			return false
		}
	}
	return true
}

// fileNameLike reports a value ending in a file extension (.zip, .json).
func fileNameLike(v string) bool {
	i := strings.LastIndexByte(v, '.')
	if i < 1 || len(v)-i-1 < 2 || len(v)-i-1 > 4 {
		return false
	}
	for _, c := range v[i+1:] {
		if c < 'a' || c > 'z' {
			return false
		}
	}
	return true
}

// credibleValue judges a value by the meaning of its name: what a
// password or a secret key looks like, and what a reference, expression,
// placeholder or setting looks like instead.
func credibleValue(meaning, v string, weak bool) bool {
	if len(v) < 6 || len(v) > maxValueLen {
		return false
	}
	lv := strings.ToLower(v)
	if sets().weakValue[lv] {
		return false
	}
	switch v[0] {
	case '$', '%', '{', '<', '@', '!', '&', '*', '#', '[', '(', '~', '.', '-', '+', '=', ':', '\\', '?':
		return false // variables, templates, YAML tags and anchors, options
	case '/':
		// A path, unless it is base64 that happens to start with '/'.
		if lo, up, dg, _ := valueClasses(v); len(v) < 20 || !lo || !up || !dg || shannonEntropy(v) < 4.2 {
			return false
		}
	}
	for _, bad := range []string{"${", "{{", "#{", "%(", "$(", "://", "(", ")", " ", "\t", "\\n", "..", "enc(", "enc[", "vault:", "arn:", "secretsmanager", "keyvault", "op://"} {
		if strings.Contains(lv, bad) {
			return false
		}
	}
	if isPlaceholder(v) || isUUID(v) {
		return false
	}
	lo, up, dg, ot := valueClasses(v)
	classes := 0
	for _, b := range []bool{lo, up, dg, ot} {
		if b {
			classes++
		}
	}
	if !lo && !up {
		return false // numbers, dates, versions
	}
	if meaning == DetectorPassword {
		if strings.Contains(lv, "passw") || strings.Contains(lv, "pass@w") || strings.Contains(lv, "a1b2c3") || identifierLike(v) && !ot {
			return false // 'user:passwd', a name rather than a password
		}
		for _, alg := range []string{"sha-", "sha1", "sha256", "sha512", "md5", "aes-", "bcrypt", "argon2", "pbkdf2", "scram"} {
			if strings.Contains(lv, alg) {
				return false // an algorithm name: a setting's value
			}
		}
		// People's passwords: at least 8 characters of two classes, or 12
		// of one class with enough entropy.
		if len(v) >= 8 && classes >= 2 {
			return shannonEntropy(v) >= 2.5
		}
		return len(v) >= 12 && shannonEntropy(v) >= 3.2
	}
	// Keys and tokens: 16+ characters of a key alphabet, random looking;
	// 20+ under a name that is only probably a credential's.
	if len(v) < 16 || weak && (len(v) < 20 || !dg || shannonEntropy(v) < 3.5) {
		return false
	}
	if classes < 2 || identifierLike(v) || fileNameLike(v) {
		return false
	}
	if ot {
		for i := 0; i < len(v); i++ {
			if c := v[i]; !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("+/=_-.~", c) >= 0) {
				return false // prose, code or markup, not a key alphabet
			}
		}
	}
	return shannonEntropy(v) >= 3.0
}
