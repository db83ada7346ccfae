package audit

import "time"

// TimeLayout is the AuditEvent time format: UTC with seven fractional digits, as Key Vault
// writes it.
const TimeLayout = "2006-01-02T15:04:05.0000000Z"

// FormatTime formats t in UTC as TimeLayout. It is written out by hand because it runs for every
// request, and time.Format's layout interpretation cost more than the rest of the record.
func FormatTime(t time.Time) string {
	t = t.UTC()
	year, month, day := t.Date()
	hour, min, sec := t.Clock()
	var b [len(TimeLayout)]byte
	put := func(at, width, v int) {
		for i := at + width - 1; i >= at; i-- {
			b[i] = byte('0' + v%10)
			v /= 10
		}
	}
	put(0, 4, year)
	b[4] = '-'
	put(5, 2, int(month))
	b[7] = '-'
	put(8, 2, day)
	b[10] = 'T'
	put(11, 2, hour)
	b[13] = ':'
	put(14, 2, min)
	b[16] = ':'
	put(17, 2, sec)
	b[19] = '.'
	put(20, 7, t.Nanosecond()/100)
	b[27] = 'Z'
	return string(b[:])
}
