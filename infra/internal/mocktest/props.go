package mocktest

import (
	"strconv"
	"strings"

	"github.com/pulumi/pulumi/sdk/v3/go/common/resource"
)

// Get walks a dotted path ("spec.template.spec.containers[0].image") through
// a property map, unwrapping secrets; it returns a null value when a step is
// missing.
func Get(pm resource.PropertyMap, path string) resource.PropertyValue {
	v := resource.NewObjectProperty(pm)
	for _, part := range splitPath(path) {
		v = Unsecret(v)
		if i, err := strconv.Atoi(part); err == nil {
			if !v.IsArray() || i >= len(v.ArrayValue()) {
				return resource.NewNullProperty()
			}
			v = v.ArrayValue()[i]
			continue
		}
		if !v.IsObject() {
			return resource.NewNullProperty()
		}
		next, ok := v.ObjectValue()[resource.PropertyKey(part)]
		if !ok {
			return resource.NewNullProperty()
		}
		v = next
	}
	return Unsecret(v)
}

// IsSecret reports whether the value at path is a secret, or sits inside one.
func IsSecret(pm resource.PropertyMap, path string) bool {
	v := resource.NewObjectProperty(pm)
	for _, part := range splitPath(path) {
		if v.IsSecret() {
			return true
		}
		if i, err := strconv.Atoi(part); err == nil {
			if !v.IsArray() || i >= len(v.ArrayValue()) {
				return false
			}
			v = v.ArrayValue()[i]
			continue
		}
		if !v.IsObject() {
			return false
		}
		next, ok := v.ObjectValue()[resource.PropertyKey(part)]
		if !ok {
			return false
		}
		v = next
	}
	return v.ContainsSecrets()
}

// Str is Get as a string ("" when absent).
func Str(pm resource.PropertyMap, path string) string {
	v := Get(pm, path)
	if v.IsString() {
		return v.StringValue()
	}
	if v.IsNumber() {
		return strconv.FormatFloat(v.NumberValue(), 'f', -1, 64)
	}
	if v.IsBool() {
		return strconv.FormatBool(v.BoolValue())
	}
	return ""
}

// Strings is Get as a list of strings.
func Strings(pm resource.PropertyMap, path string) []string {
	var out []string
	v := Get(pm, path)
	if !v.IsArray() {
		return nil
	}
	for _, e := range v.ArrayValue() {
		e = Unsecret(e)
		if e.IsString() {
			out = append(out, e.StringValue())
		}
	}
	return out
}

// StringMap is Get as a map of strings.
func StringMap(pm resource.PropertyMap, path string) map[string]string {
	out := map[string]string{}
	v := Get(pm, path)
	if !v.IsObject() {
		return out
	}
	for k, e := range v.ObjectValue() {
		e = Unsecret(e)
		if e.IsString() {
			out[string(k)] = e.StringValue()
		}
	}
	return out
}

// Unsecret returns a secret's element, or v.
func Unsecret(v resource.PropertyValue) resource.PropertyValue {
	for v.IsSecret() {
		v = v.SecretValue().Element
	}
	return v
}

func splitPath(path string) []string {
	path = strings.ReplaceAll(path, "[", ".")
	path = strings.ReplaceAll(path, "]", "")
	var out []string
	for _, p := range strings.Split(path, ".") {
		if p != "" {
			out = append(out, p)
		}
	}
	return out
}
