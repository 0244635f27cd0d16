package oidc_test

import (
	"fmt"

	"github.com/tokenward/tokenward/internal/oidc"
)

func ExampleParseClaimCondition() {
	for _, s := range []string{"repository=acme/payments", "ref=refs/heads/release-*", "environment=staging|production"} {
		c, err := oidc.ParseClaimCondition(s)
		if err != nil {
			fmt.Println(err)
			continue
		}
		fmt.Println(c.Claim, c.Op, c.Values, c.Match("refs/heads/release-2.1"))
	}
	_, err := oidc.ParseClaimCondition("repository=*")
	fmt.Println(err)
	// Output:
	// repository exact [acme/payments] false
	// ref glob [refs/heads/release-*] true
	// environment one_of [staging production] false
	// tokenward: invalid: claim repository: pattern "*" matches every value; drop the condition or narrow it
}
