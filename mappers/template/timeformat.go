package template

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// timeFormat says how a reading's time and end are written in the payload.
type timeFormat struct {
	name   string // "rfc3339", "unix", "unix-ms" or "layout"
	layout string // the Go layout when name is "layout"
}

var rfc3339 = timeFormat{name: "rfc3339"}

// maxUnixSeconds is 9999-12-31T23:59:59Z, the last second a FHIR dateTime
// can hold.
const maxUnixSeconds = 253402300799

// parseTimeFormat reads a timeFormat value: "rfc3339", "unix", "unix-ms" or
// a Go reference-time layout. A layout must give the date, the hour and
// minute, and the UTC offset, so that it names one instant.
func parseTimeFormat(s string) (timeFormat, error) {
	switch s {
	case "rfc3339", "unix", "unix-ms":
		return timeFormat{name: s}, nil
	}
	// Round-trip a time with an unusual offset: a layout without a zone, or
	// with a zone abbreviation ("MST"), which Go cannot parse back into an
	// offset, loses it.
	ref := time.Date(2031, time.November, 22, 17, 43, 0, 0, time.FixedZone("", 5*3600+30*60))
	got, err := time.Parse(s, ref.Format(s))
	_, off := got.Zone()
	if err != nil || off != 5*3600+30*60 || got.Year() != 2031 || got.Month() != time.November || got.Day() != 22 ||
		got.Hour() != 17 || got.Minute() != 43 {
		return timeFormat{}, fmt.Errorf("must be rfc3339, unix, unix-ms or a Go time layout with date, time and a numeric UTC offset " +
			"(e.g. \"2006-01-02 15:04:05 -0700\"; \"Z07:00\", \"-07:00\" and \"-0700\" give the offset, \"MST\" does not)")
	}
	return timeFormat{name: "layout", layout: s}, nil
}

func (f timeFormat) String() string {
	if f.name == "layout" {
		return strconv.Quote(f.layout)
	}
	return f.name
}

// convert turns a payload time into RFC 3339 text. rfc3339 passes the text
// through unchanged (mappers.Input.Measurement checks it); unix and unix-ms
// become UTC; a layout keeps the payload's offset. Errors wrap ErrTimeFormat
// and never quote the payload's text.
func (f timeFormat) convert(s string) (string, error) {
	switch f.name {
	case "rfc3339":
		return s, nil
	case "unix":
		return fromUnix(s, false)
	case "unix-ms":
		return fromUnix(s, true)
	}
	t, err := time.Parse(f.layout, s)
	if err != nil {
		return "", fmt.Errorf("%w %s", ErrTimeFormat, f)
	}
	return t.Format(time.RFC3339Nano), nil
}

// fromUnix converts a decimal count of seconds (or milliseconds) since
// 1970-01-01T00:00:00Z to RFC 3339 UTC. Digits beyond the nanosecond are
// dropped; exponents and negative numbers are refused.
func fromUnix(s string, millis bool) (string, error) {
	name, unit, fracDigits := "unix", "seconds", 9
	if millis {
		name, unit, fracDigits = "unix-ms", "milliseconds", 6
	}
	whole, frac, dot := strings.Cut(s, ".")
	if !digits(whole) || (dot && !digits(frac)) {
		return "", fmt.Errorf("%w %s: expected a whole or decimal number of %s since 1970-01-01T00:00:00Z", ErrTimeFormat, name, unit)
	}
	n, err := strconv.ParseInt(whole, 10, 64)
	sec, nsec := n, int64(0)
	if millis {
		sec, nsec = n/1000, n%1000*int64(time.Millisecond)
	}
	if err != nil || sec > maxUnixSeconds {
		return "", fmt.Errorf("%w %s: after 9999-12-31T23:59:59Z", ErrTimeFormat, name)
	}
	if frac != "" {
		if len(frac) > fracDigits {
			frac = frac[:fracDigits]
		}
		f, _ := strconv.ParseInt(frac+strings.Repeat("0", fracDigits-len(frac)), 10, 64)
		nsec += f
	}
	return time.Unix(sec, nsec).UTC().Format(time.RFC3339Nano), nil
}

func digits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}
