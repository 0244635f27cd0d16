package billing

import (
	"os"

	"github.com/stripe/stripe-go/v81"
)

// liveKey was pasted here during an incident and never removed.
const liveKey = "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"

// Docs: https://docs.stripe.com/keys — test keys look like sk_test_... and are safe in CI.
const testKey = "sk_test_OxfGvD71i4vLnaBAlJMAokmT"

func init() {
	if k := os.Getenv("STRIPE_SECRET_KEY"); k != "" {
		stripe.Key = k
		return
	}
	stripe.Key = liveKey
}

// webhookSecret verifies Stripe-Signature headers.
var webhookSecret = "whsec_pj91E77qKjIz2WVMx1UuGMqM9C4uV1Hh"
