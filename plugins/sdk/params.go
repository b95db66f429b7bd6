package sdk

import (
	"bytes"
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strings"
	"time"

	"google.golang.org/protobuf/types/known/structpb"
)

// DecodeParams decodes the step's parameters into dst, a pointer to a
// struct with json tags, the way encoding/json would decode the same
// document, one parameter at a time: every parameter dst has no field for,
// and every value of the wrong type, becomes a FieldError naming it (in
// parameter order), and every other parameter is decoded. Missing or
// refused parameters leave dst's fields as they were, so set defaults
// before calling. Check the decoded values next and report their problems
// too (FieldErrors.Add keeps one per field), so that an author sees every
// problem of a step in one run, not one per run.
func DecodeParams(sc *StepContext, dst any) []*FieldError {
	params := Params(sc)
	errs := unknownParams(params, dst)
	unknown := map[string]bool{}
	for _, e := range errs {
		unknown[e.GetField()] = true
	}
	for _, name := range slices.Sorted(maps.Keys(params)) {
		if unknown[name] {
			continue
		}
		data, err := json.Marshal(map[string]any{name: params[name]})
		if err != nil {
			errs = append(errs, Errorf(name, "not valid JSON: %v", err))
			continue
		}
		dec := json.NewDecoder(bytes.NewReader(data))
		dec.DisallowUnknownFields()
		if err := dec.Decode(dst); err != nil {
			errs = append(errs, decodeError(name, err))
		}
	}
	slices.SortStableFunc(errs, func(a, b *FieldError) int { return strings.Compare(a.Field, b.Field) })
	return errs
}

// FieldErrors collects a step's parameter problems, at most one per
// field: the first found for a field (or for a field it is part of, as
// "env" is of "env.PATH") is the one reported, so a value that did not
// decode is not also called missing.
type FieldErrors []*FieldError

// Add records a problem with field unless the field already has one.
func (e *FieldErrors) Add(field, format string, args ...any) {
	if !e.Has(field) {
		*e = append(*e, Errorf(field, format, args...))
	}
}

// Has reports whether field, or a field it is part of, has a problem.
func (e FieldErrors) Has(field string) bool {
	for _, fe := range e {
		f := fe.GetField()
		if f == field || strings.HasPrefix(field, f+".") || strings.HasPrefix(field, f+"[") {
			return true
		}
	}
	return false
}

// decodeError turns the encoding/json error of decoding parameter name
// into a FieldError naming the parameter, or the field inside it.
func decodeError(name string, err error) *FieldError {
	var typeErr *json.UnmarshalTypeError
	if errors.As(err, &typeErr) {
		return Errorf(cmp.Or(typeErr.Field, name), "must be %s, not %s", jsonKind(typeErr.Type), typeErr.Value)
	}
	msg := err.Error()
	if field, ok := strings.CutPrefix(msg, "json: unknown field "); ok {
		return Errorf(name+"."+strings.Trim(field, `"`), "unknown parameter")
	}
	return Errorf(name, "%s", strings.TrimPrefix(msg, "json: "))
}

// jsonKind names a Go type the way a parameter's author thinks of it.
func jsonKind(t reflect.Type) string {
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "a bool"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "an integer"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.Slice, reflect.Array:
		return "a list"
	case reflect.Map, reflect.Struct:
		return "an object"
	}
	return t.String()
}

// unknownParams returns a FieldError for each top-level parameter that dst
// (a pointer to a struct) has no field for, in name order.
func unknownParams(params map[string]any, dst any) []*FieldError {
	t := reflect.TypeOf(dst)
	if t == nil || t.Kind() != reflect.Pointer || t.Elem().Kind() != reflect.Struct {
		return nil
	}
	known := map[string]bool{}
	collectFields(t.Elem(), known)
	var errs []*FieldError
	for name := range params {
		if !known[strings.ToLower(name)] {
			errs = append(errs, Errorf(name, "unknown parameter"))
		}
	}
	slices.SortFunc(errs, func(a, b *FieldError) int { return strings.Compare(a.Field, b.Field) })
	return errs
}

// collectFields adds the lower-cased JSON names of t's fields to known,
// following embedded structs as encoding/json does.
func collectFields(t reflect.Type, known map[string]bool) {
	for f := range t.Fields() {
		tag := f.Tag.Get("json")
		name, _, _ := strings.Cut(tag, ",")
		if name == "-" && !strings.Contains(tag, ",") {
			continue
		}
		if f.Anonymous && name == "" {
			ft := f.Type
			if ft.Kind() == reflect.Pointer {
				ft = ft.Elem()
			}
			if ft.Kind() == reflect.Struct {
				collectFields(ft, known)
				continue
			}
		}
		if !f.IsExported() {
			continue
		}
		if name == "" {
			name = f.Name
		}
		// encoding/json matches names case-insensitively.
		known[strings.ToLower(name)] = true
	}
}

// MissingParams returns a FieldError "is required" for each required
// parameter in specs that the step's parameters lack (or set to null).
func MissingParams(sc *StepContext, specs []*ParamSpec) []*FieldError {
	params := Params(sc)
	var errs []*FieldError
	for _, s := range specs {
		if !s.GetRequired() {
			continue
		}
		if v, ok := params[s.GetName()]; !ok || v == nil {
			errs = append(errs, Errorf(s.GetName(), "is required"))
		}
	}
	return errs
}

// ParamsOf converts Go values to the parameters of a StepContext. Any
// value encoding/json can encode is accepted (structs, []string,
// map[string]string, numbers of any type); numbers become float64.
func ParamsOf(m map[string]any) (*structpb.Struct, error) {
	data, err := json.Marshal(m)
	if err != nil {
		return nil, fmt.Errorf("encode parameters: %w", err)
	}
	var plain map[string]any
	if err := json.Unmarshal(data, &plain); err != nil {
		return nil, fmt.Errorf("decode parameters: %w", err)
	}
	s, err := structpb.NewStruct(plain)
	if err != nil {
		return nil, fmt.Errorf("convert parameters: %w", err)
	}
	return s, nil
}

// Params returns the step's parameters as plain Go values (string,
// float64, bool, nil, []any, map[string]any); never nil.
func Params(sc *StepContext) map[string]any {
	m := sc.GetParams().AsMap()
	if m == nil {
		m = map[string]any{}
	}
	return m
}

// Deadline returns the step's deadline, and false when it has none.
func Deadline(sc *StepContext) (time.Time, bool) {
	ms := sc.GetDeadlineUnixMs()
	if ms <= 0 {
		return time.Time{}, false
	}
	return time.UnixMilli(ms), true
}
