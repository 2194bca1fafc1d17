package detect

import "testing"

func TestChainsPortmap(t *testing.T) {
	for conf, want := range map[string]bool{
		`{"name":"cbr0","plugins":[{"type":"flannel"},{"type":"portmap","capabilities":{"portMappings":true}}]}`: true,
		// Calico's template, not JSON until its placeholders are filled in.
		"{\n  \"plugins\": [\n    {\"type\": \"calico\", \"mtu\": __CNI_MTU__},\n    {\n      \"type\" : \"portmap\",\n      \"snat\": true\n    }\n  ]\n}": true,
		`{"name":"cbr0","plugins":[{"type":"flannel"}]}`: false,
		`{"type":"bridge","name":"portmap-like-name"}`:   false,
		``: false,
	} {
		if got := ChainsPortmap(conf); got != want {
			t.Errorf("ChainsPortmap(%q) = %v, want %v", conf, got, want)
		}
	}
}
