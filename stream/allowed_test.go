package stream

import (
	"math/rand/v2"
	"testing"
)

// TestIsAllowed checks the three ways an allowed-value rule is checked
// (packed short codes, a scanned list, a map) against each other and
// against values that share prefixes, lengths or bytes with the allowed
// ones.
func TestIsAllowed(t *testing.T) {
	probes := []string{"", "E", "EU", "EU-D", "EU-DE", "EU-DEX", "EU-DE\x00", "eu-de", "ABCDEFG", "ABCDEFGH",
		"ABCDEF", "ABCDEF\x00", "\x00", "UK", "U", "K", "CN", "EU-FR", "much longer than seven"}
	for _, tc := range []struct {
		name      string
		allowed   []string
		wantShort bool
	}{
		{"short codes", []string{"EU-DE", "EU-FR", "EU-IT", "UK", "US", "CA", "JP", "CN", "BR", "ABCDEFG", "", "\x00"}, true},
		{"few short codes", []string{"EU-DE", "UK"}, true},
		{"a long value", []string{"EU-DE", "much longer than seven"}, false},
		{"many long values", []string{"alpha-1234", "beta-12345", "gamma-1234", "delta-1234", "epsilon-12", "zeta-12345",
			"eta-123456", "theta-1234", "iota-12345", "kappa-1234"}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := validSchema()
			s.Rules["region"] = Rule{Allowed: tc.allowed}
			var c *colSpec
			cols := compileColumns(s)
			for i := range cols {
				if cols[i].name == "region" {
					c = &cols[i]
				}
			}
			if c == nil {
				t.Fatal("no region column")
			}
			if (c.short != nil) != tc.wantShort {
				t.Fatalf("packed short codes: %v, want %v", c.short != nil, tc.wantShort)
			}
			in := map[string]bool{}
			for _, a := range tc.allowed {
				in[a] = true
			}
			check := func(v string) {
				if got := c.isAllowed([]byte(v)); got != in[v] {
					t.Errorf("isAllowed(%q) = %v, want %v", v, got, in[v])
				}
			}
			for _, v := range append(probes, tc.allowed...) {
				check(v)
			}
			rng := rand.New(rand.NewPCG(1, 2))
			for range 2000 {
				b := make([]byte, rng.IntN(9))
				for i := range b {
					b[i] = "EU-DFRKACNJPBG\x00"[rng.IntN(15)]
				}
				check(string(b))
			}
		})
	}
}
