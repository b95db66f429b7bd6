package sdk

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"time"

	"google.golang.org/protobuf/types/known/structpb"
)

// DecodeParams decodes the step's parameters into dst, a pointer to a
// struct with json tags, the way encoding/json would decode the same
// document. A parameter dst has no field for, and a value of the wrong
// type, become FieldErrors naming the parameter; a nil result means dst
// is filled. Missing parameters leave dst's fields as they were, so set
// defaults before calling, and check required ones with MissingParams or
// by hand.
func DecodeParams(sc *StepContext, dst any) []*FieldError {
	data, err := json.Marshal(Params(sc))
	if err != nil {
		return []*FieldError{Errorf("", "parameters are not valid JSON: %v", err)}
	}
	// Report every unknown top-level parameter, not only the first one
	// encoding/json stops at.
	if errs := unknownParams(Params(sc), dst); len(errs) > 0 {
		return errs
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(dst); err != nil {
		return []*FieldError{decodeError(err)}
	}
	return nil
}

// decodeError turns an encoding/json error into a FieldError.
func decodeError(err error) *FieldError {
	var typeErr *json.UnmarshalTypeError
	if errors.As(err, &typeErr) {
		return Errorf(typeErr.Field, "must be %s, not %s", jsonKind(typeErr.Type), typeErr.Value)
	}
	msg := err.Error()
	if name, ok := strings.CutPrefix(msg, "json: unknown field "); ok {
		return Errorf(strings.Trim(name, `"`), "unknown parameter")
	}
	return Errorf("", "%s", strings.TrimPrefix(msg, "json: "))
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
