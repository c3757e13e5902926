// minihelm renders a Helm chart's templates with Go's text/template and the handful of Sprig
// functions this chart uses, so the tests can check the chart's output where no Helm binary
// can be installed. It is not Helm: no subcharts, no hooks ordering, no `tpl`, lookup returns
// nothing (as under `helm template`). Numbers in values are float64, as in Helm.
//
// Usage: minihelm CHART_DIR CONTEXT_JSON  (CONTEXT_JSON: {"Values":..,"Chart":..,"Release":..})
package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/rand"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"text/template"
)

func strval(v interface{}) string {
	switch s := v.(type) {
	case string:
		return s
	case nil:
		return ""
	case float64:
		return strconv.FormatFloat(s, 'f', -1, 64)
	default:
		return fmt.Sprintf("%v", v)
	}
}

func empty(v interface{}) bool {
	if v == nil {
		return true
	}
	rv := reflect.ValueOf(v)
	switch rv.Kind() {
	case reflect.String, reflect.Map, reflect.Slice, reflect.Array:
		return rv.Len() == 0
	case reflect.Bool:
		return !rv.Bool()
	case reflect.Int, reflect.Int64:
		return rv.Int() == 0
	case reflect.Float64:
		return rv.Float() == 0
	}
	return false
}

func toInt64(v interface{}) int64 {
	switch n := v.(type) {
	case float64:
		return int64(n)
	case int:
		return int64(n)
	case int64:
		return n
	case string:
		i, _ := strconv.ParseInt(n, 10, 64)
		return i
	case bool:
		if n {
			return 1
		}
	}
	return 0
}

func scalarYAML(v interface{}) string {
	switch s := v.(type) {
	case nil:
		return "null"
	case bool:
		return strconv.FormatBool(s)
	case float64:
		if s == math.Trunc(s) && math.Abs(s) < 1e15 {
			return strconv.FormatInt(int64(s), 10)
		}
		return strconv.FormatFloat(s, 'f', -1, 64)
	case int, int64:
		return fmt.Sprintf("%d", s)
	default:
		b, _ := json.Marshal(strval(v))
		return string(b)
	}
}

// toYAML writes block-style YAML with sorted keys and JSON-quoted strings.
func toYAML(v interface{}, indent int) []string {
	pad := strings.Repeat(" ", indent)
	var lines []string
	switch t := v.(type) {
	case map[string]interface{}:
		if len(t) == 0 {
			return []string{pad + "{}"}
		}
		keys := make([]string, 0, len(t))
		for k := range t {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			kq, _ := json.Marshal(k)
			child := t[k]
			if isCollection(child) {
				lines = append(lines, pad+string(kq)+":")
				lines = append(lines, toYAML(child, indent+2)...)
			} else {
				lines = append(lines, pad+string(kq)+": "+scalarYAML(child))
			}
		}
	case []interface{}:
		if len(t) == 0 {
			return []string{pad + "[]"}
		}
		for _, item := range t {
			if isCollection(item) {
				sub := toYAML(item, indent+2)
				sub[0] = pad + "- " + strings.TrimLeft(sub[0], " ")
				lines = append(lines, sub...)
			} else {
				lines = append(lines, pad+"- "+scalarYAML(item))
			}
		}
	case []string:
		items := make([]interface{}, len(t))
		for i, s := range t {
			items[i] = s
		}
		return toYAML(items, indent)
	default:
		return []string{pad + scalarYAML(v)}
	}
	return lines
}

func isCollection(v interface{}) bool {
	switch t := v.(type) {
	case map[string]interface{}:
		return len(t) > 0
	case []interface{}:
		return len(t) > 0
	case []string:
		return len(t) > 0
	}
	return false
}

func indentLines(n int, s string) string {
	pad := strings.Repeat(" ", n)
	return pad + strings.ReplaceAll(s, "\n", "\n"+pad)
}

func toList(v interface{}) []interface{} {
	rv := reflect.ValueOf(v)
	if rv.Kind() != reflect.Slice && rv.Kind() != reflect.Array {
		return nil
	}
	out := make([]interface{}, rv.Len())
	for i := range out {
		out[i] = rv.Index(i).Interface()
	}
	return out
}

func main() {
	if len(os.Args) != 3 {
		fmt.Fprintln(os.Stderr, "usage: minihelm CHART_DIR CONTEXT_JSON")
		os.Exit(2)
	}
	chartDir := os.Args[1]
	raw, err := os.ReadFile(os.Args[2])
	check(err)
	var ctx map[string]interface{}
	check(json.Unmarshal(raw, &ctx))

	var tpl *template.Template
	funcs := template.FuncMap{
		"include": func(name string, data interface{}) (string, error) {
			var buf bytes.Buffer
			err := tpl.ExecuteTemplate(&buf, name, data)
			return buf.String(), err
		},
		"default": func(d interface{}, given ...interface{}) interface{} {
			if len(given) == 0 || empty(given[0]) {
				return d
			}
			return given[0]
		},
		"trunc": func(n int, s string) string {
			if len(s) > n {
				return s[:n]
			}
			return s
		},
		"trimSuffix": func(suffix, s string) string { return strings.TrimSuffix(s, suffix) },
		"replace":    func(old, new, s string) string { return strings.ReplaceAll(s, old, new) },
		"trimPrefix": func(prefix, s string) string { return strings.TrimPrefix(s, prefix) },
		"regexFind":  func(re, s string) string { return regexp.MustCompile(re).FindString(s) },
		// Sprig's urlParse: the same keys (host keeps the port, as url.URL.Host does).
		"urlParse": func(s string) map[string]interface{} {
			u, err := url.Parse(s)
			if err != nil {
				panic(fmt.Sprintf("unable to parse url: %s", err))
			}
			userinfo := ""
			if u.User != nil {
				userinfo = u.User.String()
			}
			return map[string]interface{}{
				"scheme": u.Scheme, "host": u.Host, "hostname": u.Hostname(), "path": u.Path,
				"query": u.RawQuery, "opaque": u.Opaque, "fragment": u.Fragment,
				"userinfo": userinfo,
			}
		},
		"quote": func(args ...interface{}) string {
			var out []string
			for _, a := range args {
				if a != nil {
					out = append(out, fmt.Sprintf("%q", strval(a)))
				}
			}
			return strings.Join(out, " ")
		},
		"toYaml": func(v interface{}) string {
			return strings.Join(toYAML(v, 0), "\n")
		},
		"nindent":   func(n int, s string) string { return "\n" + indentLines(n, s) },
		"indent":    func(n int, s string) string { return indentLines(n, s) },
		"sha256sum": func(s string) string { h := sha256.Sum256([]byte(s)); return hex.EncodeToString(h[:]) },
		"int":       func(v interface{}) int { return int(toInt64(v)) },
		"int64":     toInt64,
		"upper":     strings.ToUpper,
		"lower":     strings.ToLower,
		"trim":      strings.TrimSpace,
		"splitList": func(sep, s string) []string { return strings.Split(s, sep) },
		"fromYaml": func(s string) map[string]interface{} {
			// Enough for flat `key: value` documents (what this chart feeds it).
			out := map[string]interface{}{}
			for _, line := range strings.Split(s, "\n") {
				if strings.TrimSpace(line) == "" {
					continue
				}
				k, v, ok := strings.Cut(line, ":")
				if !ok || strings.HasPrefix(line, " ") {
					out["Error"] = "minihelm fromYaml: unsupported line " + line
					continue
				}
				out[strings.TrimSpace(k)] = strings.Trim(strings.TrimSpace(v), `"`)
			}
			return out
		},
		"keys": func(dicts ...map[string]interface{}) []string {
			var out []string
			for _, d := range dicts {
				for k := range d {
					out = append(out, k)
				}
			}
			return out
		},
		"sortAlpha": func(v interface{}) []string {
			var out []string
			for _, x := range toList(v) {
				out = append(out, strval(x))
			}
			sort.Strings(out)
			return out
		},
		"lookup": func(apiVersion, kind, ns, name string) map[string]interface{} {
			return map[string]interface{}{}
		},
		"get": func(d map[string]interface{}, key string) interface{} {
			if v, ok := d[key]; ok {
				return v
			}
			return ""
		},
		"hasKey": func(d map[string]interface{}, key string) bool { _, ok := d[key]; return ok },
		"has": func(needle interface{}, haystack interface{}) bool {
			for _, x := range toList(haystack) {
				if reflect.DeepEqual(x, needle) {
					return true
				}
			}
			return false
		},
		"randAlphaNum": func(n int) string {
			const letters = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
			b := make([]byte, n)
			for i := range b {
				b[i] = letters[rand.Intn(len(letters))]
			}
			return string(b)
		},
		"b64enc": func(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) },
		"list":   func(v ...interface{}) []interface{} { return v },
		"dict": func(kv ...interface{}) map[string]interface{} {
			out := map[string]interface{}{}
			for i := 0; i+1 < len(kv); i += 2 {
				out[strval(kv[i])] = kv[i+1]
			}
			return out
		},
		"fail": func(msg string) (string, error) { return "", errors.New(msg) },
	}

	tpl = template.New("chart").Funcs(funcs).Option("missingkey=zero")
	files, err := filepath.Glob(filepath.Join(chartDir, "templates", "*"))
	check(err)
	sort.Strings(files)
	for _, f := range files {
		b, err := os.ReadFile(f)
		check(err)
		_, err = tpl.New("templates/" + filepath.Base(f)).Parse(string(b))
		check(err)
	}
	ctx["Template"] = map[string]interface{}{"BasePath": "templates"}
	var out bytes.Buffer
	for _, f := range files {
		base := filepath.Base(f)
		if strings.HasPrefix(base, "_") {
			continue
		}
		var buf bytes.Buffer
		if err := tpl.ExecuteTemplate(&buf, "templates/"+base, ctx); err != nil {
			fmt.Fprintf(os.Stderr, "%s: %v\n", base, err)
			os.Exit(1)
		}
		text := strings.ReplaceAll(buf.String(), "<no value>", "")
		if base == "NOTES.txt" {
			continue
		}
		if strings.TrimSpace(text) == "" {
			continue
		}
		fmt.Fprintf(&out, "---\n# Source: %s/templates/%s\n%s\n", filepath.Base(chartDir), base, text)
	}
	os.Stdout.Write(out.Bytes())
}

func check(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
