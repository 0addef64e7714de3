package config

import (
	"errors"
	"fmt"
	"reflect"
	"strconv"
	"time"
)

// Defaults sets each zero field of the struct that v points to from its `default:` tag, the
// value envconfig gives a variable that the environment does not set, so that a struct
// built in code gets the defaults that the services read. Fields of embedded structs are
// set too; fields without the tag, unexported ones and ones tagged `ignored:"true"` are
// left alone. A field that must stay zero against its default is set after Defaults.
// Defaults supports the kinds Kohaku's configuration uses: string, bool, int, int64 and
// time.Duration; a default of another kind, or one that does not parse, is an error.
func Defaults(v any) error {
	p := reflect.ValueOf(v)
	if p.Kind() != reflect.Pointer || p.IsNil() || p.Elem().Kind() != reflect.Struct {
		return fmt.Errorf("config: defaults of %T: want a non-nil pointer to a struct", v)
	}
	return defaults(p.Elem())
}

func defaults(s reflect.Value) error {
	t := s.Type()
	var errs []error
	for i := range t.NumField() {
		f, sf := s.Field(i), t.Field(i)
		// envconfig skips the same fields (strconv.ParseBool is its reading of "true").
		if ignored, _ := strconv.ParseBool(sf.Tag.Get("ignored")); ignored || !sf.IsExported() {
			continue
		}
		if sf.Anonymous && f.Kind() == reflect.Struct {
			errs = append(errs, defaults(f))
			continue
		}
		def, ok := sf.Tag.Lookup("default")
		if !ok || def == "" || !f.IsZero() {
			continue // envconfig also leaves a field alone when its default is empty
		}
		if err := set(f, def); err != nil {
			errs = append(errs, fmt.Errorf("config: %s.%s: default %q: %w", t.Name(), sf.Name, def, err))
		}
	}
	return errors.Join(errs...)
}

// set parses s into f as envconfig would.
func set(f reflect.Value, s string) error {
	// time.Duration is an int64 by kind: look at the type first.
	if f.Type() == reflect.TypeFor[time.Duration]() {
		d, err := time.ParseDuration(s)
		if err != nil {
			return err
		}
		f.SetInt(int64(d))
		return nil
	}
	switch f.Kind() {
	case reflect.String:
		f.SetString(s)
	case reflect.Bool:
		b, err := strconv.ParseBool(s)
		if err != nil {
			return err
		}
		f.SetBool(b)
	case reflect.Int, reflect.Int64:
		n, err := strconv.ParseInt(s, 0, f.Type().Bits())
		if err != nil {
			return err
		}
		f.SetInt(n)
	default:
		return fmt.Errorf("unsupported kind %s", f.Kind())
	}
	return nil
}
