package fhirjson

import (
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

type precision uint8

const (
	precYear precision = iota
	precMonth
	precDay
	precSecond
	precMilli
	precMicro
)

// zone is a resolved DateTime.timezone.
type zone struct {
	utcZ   bool           // "Z": written as Z (google/fhir's LayoutSecondsUTC etc.)
	offset int            // fixed offset in seconds, when loc is nil
	loc    *time.Location // named zone (IANA, "UTC", "Local", "")
}

// resolveZone resolves tz as google/fhir's jsonpbhelper.GetLocation does:
// "Z" is UTC; otherwise time.LoadLocation(tz), and when that fails a
// "±h:m" offset parsed leniently with strconv.Atoi. The common "±hh:mm" is
// parsed directly (no IANA zone has such a name), and named zones are
// cached, so the per-call tzdata lookup google/fhir pays is avoided while
// the text stays identical.
func resolveZone(tz string) (zone, bool) {
	if tz == "Z" {
		return zone{utcZ: true}, true
	}
	if off, ok := strictOffset(tz); ok {
		return zone{offset: off}, true
	}
	if loc := loadZone(tz); loc != nil {
		return zone{loc: loc}, true
	}
	off, ok := lenientOffset(tz)
	return zone{offset: off}, ok
}

// strictOffset parses exactly [+-]hh:mm.
func strictOffset(tz string) (int, bool) {
	if len(tz) != 6 || (tz[0] != '+' && tz[0] != '-') || tz[3] != ':' {
		return 0, false
	}
	for _, i := range [4]int{1, 2, 4, 5} {
		if tz[i] < '0' || tz[i] > '9' {
			return 0, false
		}
	}
	off := (int(tz[1]-'0')*10+int(tz[2]-'0'))*3600 + (int(tz[4]-'0')*10+int(tz[5]-'0'))*60
	if tz[0] == '-' {
		off = -off
	}
	return off, true
}

// lenientOffset is google/fhir's offsetToSeconds.
func lenientOffset(tz string) (int, bool) {
	if tz == "" || tz == "Z" {
		return 0, true
	}
	if tz[0] != '+' && tz[0] != '-' {
		return 0, false
	}
	h, m, ok := strings.Cut(tz[1:], ":")
	if !ok || strings.Contains(m, ":") {
		return 0, false
	}
	hour, err := strconv.Atoi(h)
	if err != nil {
		return 0, false
	}
	minute, err := strconv.Atoi(m)
	if err != nil {
		return 0, false
	}
	if tz[0] == '-' {
		return -hour*3600 - minute*60, true
	}
	return hour*3600 + minute*60, true
}

// zones caches time.LoadLocation by name (nil: not a location). It holds at
// most maxZones names so hostile input cannot grow it without bound.
var (
	zones     sync.Map
	zoneCount atomic.Int32
)

const maxZones = 256

func loadZone(name string) *time.Location {
	if v, ok := zones.Load(name); ok {
		return v.(*time.Location)
	}
	loc, err := time.LoadLocation(name)
	if err != nil {
		loc = nil
	}
	if zoneCount.Add(1) <= maxZones {
		zones.Store(name, loc)
	}
	return loc
}

// appendTimestamp writes valueUs in tz at prec the way google/fhir's
// serializeDateTime / SerializeInstant / serializeDate do (Go layouts
// "2006-01-02T15:04:05.000-07:00" and friends, with a literal Z when tz is
// "Z"; fractions truncated, offsets to the minute). It returns a reason
// instead when tz is not a time zone, or the text would not be a FHIR R4
// dateTime: a year outside 0001-9999 or an offset beyond ±14:00.
func appendTimestamp(b []byte, us int64, tz string, prec precision) ([]byte, string) {
	z, ok := resolveZone(tz)
	if !ok {
		return b, "invalid time zone"
	}
	sec := us / 1e6
	frac := us % 1e6
	if frac < 0 {
		sec--
		frac += 1e6
	}
	off := z.offset
	if z.loc != nil {
		_, off = time.Unix(sec, 0).In(z.loc).Zone()
	}
	zoneMin := off / 60 // Go's -07:00 drops the seconds of an offset
	if zoneMin > 14*60 || zoneMin < -14*60 {
		return b, "UTC offset beyond ±14:00"
	}
	t := time.Unix(sec+int64(off), 0).UTC()
	year, month, day := t.Date()
	if year < 1 || year > 9999 {
		return b, "year outside 0001-9999"
	}
	b = append(b, byte('0'+year/1000), byte('0'+year/100%10), byte('0'+year/10%10), byte('0'+year%10))
	if prec == precYear {
		return b, ""
	}
	b = append(b, '-', byte('0'+month/10), byte('0'+month%10))
	if prec == precMonth {
		return b, ""
	}
	b = append(b, '-', byte('0'+day/10), byte('0'+day%10))
	if prec == precDay {
		return b, ""
	}
	b = append(b, 'T')
	b = appendClock(b, int64(t.Hour()*3600+t.Minute()*60+t.Second())*1e6+frac, prec)
	if z.utcZ {
		return append(b, 'Z'), ""
	}
	sign := byte('+')
	if zoneMin < 0 {
		sign, zoneMin = '-', -zoneMin
	}
	return append(b, sign, byte('0'+zoneMin/600), byte('0'+zoneMin/60%10), ':', byte('0'+zoneMin%60/10), byte('0'+zoneMin%10)), ""
}

// appendClock writes the time of day us (0 <= us < 24h) as hh:mm:ss with
// the fraction prec asks for.
func appendClock(b []byte, us int64, prec precision) []byte {
	s := int(us / 1e6)
	frac := int(us % 1e6)
	h, m := s/3600, s/60%60
	s %= 60
	b = append(b, byte('0'+h/10), byte('0'+h%10), ':', byte('0'+m/10), byte('0'+m%10), ':', byte('0'+s/10), byte('0'+s%10))
	switch prec {
	case precMilli:
		ms := frac / 1000
		b = append(b, '.', byte('0'+ms/100), byte('0'+ms/10%10), byte('0'+ms%10))
	case precMicro:
		b = append(b, '.', byte('0'+frac/100000), byte('0'+frac/10000%10), byte('0'+frac/1000%10),
			byte('0'+frac/100%10), byte('0'+frac/10%10), byte('0'+frac%10))
	}
	return b
}
