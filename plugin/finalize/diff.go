package finalize

import (
	"fmt"
	"sort"
)

// Changes lists the leaf keys that differ between two values maps, sorted.
func Changes(a, b map[string]any, prefix string) []string {
	keys := map[string]bool{}
	for k := range a {
		keys[k] = true
	}
	for k := range b {
		keys[k] = true
	}
	var out []string
	for k := range keys {
		path := prefix + k
		am, aIsMap := a[k].(map[string]any)
		bm, bIsMap := b[k].(map[string]any)
		if aIsMap && bIsMap {
			out = append(out, Changes(am, bm, path+".")...)
			continue
		}
		if fmt.Sprint(a[k]) != fmt.Sprint(b[k]) {
			out = append(out, fmt.Sprintf("%s: %v -> %v", path, show(a[k]), show(b[k])))
		}
	}
	sort.Strings(out)
	return out
}

func show(v any) string {
	if v == nil {
		return "(unset)"
	}
	return fmt.Sprint(v)
}
