package inject_test

import (
	"fmt"
	"os"

	"github.com/tokenward/tokenward/internal/inject"
)

func ExampleMasker() {
	m := inject.NewMasker(map[string]string{"API_KEY": "sk_live_4eC39Hq", "PIN": "42"}, 0)
	fmt.Println("not masked:", m.ShortNames())
	r := m.NewRedactor(os.Stdout)
	// The value arrives split across writes, then base64-encoded.
	fmt.Fprint(r, "token=sk_live_")
	fmt.Fprint(r, "4eC39Hq pin=42\n")
	fmt.Fprint(r, "basic c2tfbGl2ZV80ZUMzOUhx\n")
	r.Close()
	// Output:
	// not masked: [PIN]
	// token=*** pin=42
	// basic ***
}

func ExampleEncode() {
	vals := map[string]string{"DB_URL": "postgres://app:it's@db/app", "GREETING": "hello\nworld"}
	out, _ := inject.Encode(inject.FormatShell, vals)
	fmt.Print(string(out))
	// Output:
	// export DB_URL='postgres://app:it'\''s@db/app'
	// export GREETING='hello
	// world'
}

func ExampleMerge() {
	shared := map[string]string{"LOG_LEVEL": "info", "DB_URL": "postgres://shared"}
	prod := map[string]string{"DB_URL": "postgres://prod"}
	fmt.Println(inject.Merge(shared, prod)) // --env shared --env prod: prod wins
	// Output: map[DB_URL:postgres://prod LOG_LEVEL:info]
}
