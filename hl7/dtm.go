package hl7

import "time"

// Local seconds (Unix seconds plus the UTC offset) of 0000-01-01T00:00:00
// and 10000-01-01T00:00:00, the range a four-digit DTM year can write.
const (
	minDTMSeconds = -62167219200
	endDTMSeconds = 253402300800
)

// localSeconds returns t's wall clock in its own location as seconds since
// 1970-01-01T00:00:00, and its UTC offset in seconds.
func localSeconds(t time.Time) (secs int64, offset int) {
	_, offset = t.Zone()
	return t.Unix() + int64(offset), offset
}

// dtmInRange reports whether t's local year is within 0-9999.
func dtmInRange(t time.Time) bool {
	s, _ := localSeconds(t)
	return minDTMSeconds <= s && s < endDTMSeconds
}

// appendDTM writes t as HL7 DTM YYYYMMDDHHMMSS[.S{1,4}]+/-ZZZZ in t's own
// location. The fraction has as many digits as t's sub-second part needs, at
// most four (finer parts are truncated). The zero time writes nothing. t
// must satisfy dtmInRange.
func appendDTM(b []byte, t time.Time) []byte {
	if t.IsZero() {
		return b
	}
	secs, off := localSeconds(t)
	days := secs / 86400
	if secs%86400 < 0 {
		days--
	}
	sod := int(secs - days*86400)
	year, month, day := civilDate(days)
	b = appendDigits(b, year, 4)
	b = appendDigits(b, month, 2)
	b = appendDigits(b, day, 2)
	b = appendDigits(b, sod/3600, 2)
	b = appendDigits(b, sod/60%60, 2)
	b = appendDigits(b, sod%60, 2)
	if frac := t.Nanosecond() / 100_000; frac != 0 {
		n := 4
		for frac%10 == 0 {
			frac /= 10
			n--
		}
		b = append(b, '.')
		b = appendDigits(b, frac, n)
	}
	sign := byte('+')
	if off < 0 {
		sign, off = '-', -off
	}
	off /= 60
	b = append(b, sign)
	b = appendDigits(b, off/60, 2)
	return appendDigits(b, off%60, 2)
}

// civilDate converts days since 1970-01-01 to a proleptic Gregorian date
// (the days-from-civil inverse by Howard Hinnant, public domain algorithm).
func civilDate(days int64) (year, month, day int) {
	z := days + 719468
	era := z / 146097
	if z < 0 && z%146097 != 0 {
		era--
	}
	doe := z - era*146097                                  // [0, 146096]
	yoe := (doe - doe/1460 + doe/36524 - doe/146096) / 365 // [0, 399]
	doy := doe - (365*yoe + yoe/4 - yoe/100)               // [0, 365]
	mp := (5*doy + 2) / 153                                // [0, 11], March first
	day = int(doy - (153*mp+2)/5 + 1)
	month = int(mp + 3)
	if month > 12 {
		month -= 12
	}
	year = int(yoe + era*400)
	if month <= 2 {
		year++
	}
	return year, month, day
}

// appendDigits writes v (0 <= v < 10^n, n is 2 or 4) zero-padded to n
// digits; other n write v's last n digits one by one.
func appendDigits(b []byte, v, n int) []byte {
	switch n {
	case 2:
		return append(b, digitPairs[v*2], digitPairs[v*2+1])
	case 4:
		hi, lo := v/100, v%100
		return append(b, digitPairs[hi*2], digitPairs[hi*2+1], digitPairs[lo*2], digitPairs[lo*2+1])
	}
	var tmp [4]byte
	for i := n - 1; i >= 0; i-- {
		tmp[i] = byte('0' + v%10)
		v /= 10
	}
	return append(b, tmp[:n]...)
}

const digitPairs = "00010203040506070809" +
	"10111213141516171819" +
	"20212223242526272829" +
	"30313233343536373839" +
	"40414243444546474849" +
	"50515253545556575859" +
	"60616263646566676869" +
	"70717273747576777879" +
	"80818283848586878889" +
	"90919293949596979899"
