package values

import (
	"math"
	"math/rand/v2"
	"reflect"
	"testing"
)

// tricky strings for keys and values: YAML 1.1 booleans, nulls and numbers,
// indicators, whitespace, control and non-printable characters.
func trickyStrings() []string {
	return []string{
		"", " ", "a b", " lead", "trail ", "yes", "No", "ON", "off", "y", "N", "true", "False", "null", "Null", "~",
		"1", "1.18", "1.18.11", "10.245.0.0/16", "0x1F", "0o17", "0b101", "1_000", "1e3", "1E+3", ".5", "+1", "-1",
		".inf", "-.Inf", ".nan", "NaN", "inf", "2001-12-14", "2001-12-14T21:59:43.10-05:00", "12:30", "1:20:30",
		"-", "- a", "--", "---", "...", ":", "a:b", "a: b", "#x", "x #y", "x#y", "'", "\"", "\\", "`x", "@x", "%x",
		"!x", "!!str", "&a", "*a", "|", ">", "[", "]", "{", "}", ",", "?", "? x", "=", "<<", "a,b",
		"\n", "a\nb", "\t", "\r\n", "\x00", "\x07", "\x1b[0m", "\x7f", "\u0085", "\u00a0", "\u2028", "\u2029",
		"\ufeff", "\ufffe", "\uffff", "\U0001F600", "日本語", "kube-system", "app.kubernetes.io/name", "/host/etc/cni/net.d",
		"_x", "x-", "x.", "x/", "a/b:c", "quay.io/cilium/cilium:v1.18.11@sha256:abc",
	}
}

func trickyNumbers() []float64 {
	return []float64{
		0, 1, -1, 8473, 0.5, -0.25, 1.5e-7, 1e15, 1e15 - 1, -1e15, 1e21, 1e300, 9007199254740993, math.MaxInt64,
		math.SmallestNonzeroFloat64, math.MaxFloat64, 123456789.123456789,
	}
}

func newTestDoc(values map[string]any) *Doc {
	return &Doc{
		name: "test.yaml", title: "test", values: values,
		notes: map[string]string{}, ours: map[string]any{}, user: map[string]bool{}, rank: map[string]int{},
	}
}

func TestEmitTrickyScalars(t *testing.T) {
	trickyStrings, trickyNumbers := trickyStrings(), trickyNumbers()
	values := map[string]any{}
	list := []any{}
	for i, s := range trickyStrings {
		values[s] = s
		list = append(list, s)
		values["num"+string(rune('a'+i%26))+s] = trickyNumbers[i%len(trickyNumbers)]
	}
	for _, f := range trickyNumbers {
		list = append(list, f)
	}
	values["list"] = list
	values["bools"] = []any{true, false, nil}
	values["nested"] = map[string]any{"l": []any{[]any{[]any{"x"}, map[string]any{}}, map[string]any{"a": []any{map[string]any{"b": nil}}}, []any{}}}
	checkRoundTrip(t, newTestDoc(values))
}

// TestEmitRandom writes random documents and reads them back.
func TestEmitRandom(t *testing.T) {
	trickyStrings, trickyNumbers := trickyStrings(), trickyNumbers()
	r := rand.New(rand.NewPCG(1, 2))
	var value func(depth int) any
	str := func() string {
		if r.IntN(3) == 0 {
			b := make([]rune, r.IntN(6))
			for i := range b {
				b[i] = rune(r.IntN(0x3000))
				if r.IntN(4) == 0 {
					b[i] = rune(0x20 + r.IntN(0x5f))
				}
			}
			return string(b)
		}
		return trickyStrings[r.IntN(len(trickyStrings))]
	}
	value = func(depth int) any {
		switch n := r.IntN(8); {
		case n == 0 && depth < 4:
			m := map[string]any{}
			for i := r.IntN(4); i > 0; i-- {
				m[str()] = value(depth + 1)
			}
			return m
		case n == 1 && depth < 4:
			l := []any{}
			for i := r.IntN(4); i > 0; i-- {
				l = append(l, value(depth+1))
			}
			return l
		case n == 2:
			return trickyNumbers[r.IntN(len(trickyNumbers))]
		case n == 3:
			return r.NormFloat64() * math.Pow(10, float64(r.IntN(40)-20))
		case n == 4:
			return r.IntN(2) == 0
		case n == 5:
			return nil
		}
		return str()
	}
	for i := 0; i < 300; i++ {
		m := map[string]any{}
		for j := r.IntN(6); j > 0; j-- {
			m[str()] = value(0)
		}
		d := newTestDoc(m)
		b, err := d.YAML()
		if err != nil {
			t.Fatal(err)
		}
		if got := parseBack(t, b); !reflect.DeepEqual(got, d.Map()) {
			t.Fatalf("document %d does not parse back\n got: %#v\nwant: %#v\n%s", i, got, d.Map(), b)
		}
	}
}

func TestEmitRejectsNonJSONValues(t *testing.T) {
	for _, v := range []any{math.NaN(), math.Inf(1), 3, struct{}{}} {
		if _, err := newTestDoc(map[string]any{"a": v}).YAML(); err == nil {
			t.Errorf("%#v: no error", v)
		}
	}
}

func TestPlainScalars(t *testing.T) {
	e := &emitter{dotted: dottedNumeric()}
	for s, want := range map[string]string{
		"tunnel":              "tunnel",
		"cluster-pool":        "cluster-pool",
		"10.245.0.0/16":       "10.245.0.0/16",
		"172.18.0.2":          "172.18.0.2",
		"app.kubernetes.io/x": "app.kubernetes.io/x",
		"yes":                 `"yes"`,
		"1.18":                `"1.18"`,
		"8473":                `"8473"`,
		"":                    `""`,
		"a b":                 `"a b"`,
		"\x7f":                `"\u007F"`,
		"a\"b\\c\n":           `"a\"b\\c\n"`,
	} {
		if got := e.str(s); got != want {
			t.Errorf("str(%q) = %s, want %s", s, got, want)
		}
	}
}
