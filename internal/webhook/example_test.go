package webhook_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"time"

	"github.com/tokenward/tokenward/internal/webhook"
)

// A receiver verifies the exact bytes of the body before it parses them;
// Verify compares in constant time and refuses a timestamp more than
// tolerance away from its clock, so a captured request cannot be replayed.
func ExampleVerify() {
	secret := []byte("0123456789abcdef-example")
	receiver := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
		if err != nil {
			http.Error(w, "bad body", http.StatusBadRequest)
			return
		}
		if err := webhook.Verify(secret, r.Header, body, time.Now(), 5*time.Minute); err != nil {
			http.Error(w, "bad signature", http.StatusUnauthorized)
			return
		}
		fmt.Printf("verified %s\n", body)
	})
	srv := httptest.NewServer(receiver)
	defer srv.Close()

	// What tokenward sends.
	var d webhook.Deliverer
	if _, err := d.Deliver(context.Background(), srv.URL+"/hook", secret, []byte(`{"type":"anomaly"}`)); err != nil {
		fmt.Println(err)
	}

	// A forged body under a signature taken from another request.
	forged := httptest.NewRequest(http.MethodPost, "/hook", strings.NewReader(`{"type":"forged"}`))
	forged.Header.Set(webhook.SignatureHeader, webhook.Sign(secret, time.Now(), []byte(`{"type":"anomaly"}`)))
	answer := httptest.NewRecorder()
	receiver.ServeHTTP(answer, forged)
	fmt.Println(answer.Code)
	// Output:
	// verified {"type":"anomaly"}
	// 401
}
