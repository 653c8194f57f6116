package forward

import (
	"bufio"
	"bytes"
	"strings"
	"time"
)

// Reason is why a message is in quarantine: the reason file written
// beside it (quarantine/<name>.reason), one "Key: value" line per field:
//
//	Next-Hop: lmtp:inet:127.0.0.1:8024
//	Reply: 550 5.1.1 <nolist@example.org>: Recipient address rejected
//	Sender: <anne@example.net>
//	Recipient: announce@example.org
//	Date: Wed, 02 Dec 2026 06:34:48 +0000
//
// Reply is the next hop's reply, or for a command its exit status and the
// start of its standard error. Unknown keys are skipped when read.
type Reason struct {
	NextHop   string
	Reply     string
	Sender    string // in angle brackets: "<>" for the null sender
	Recipient string
	Date      time.Time
}

// oneLine makes v fit on one line of a reason file: line ends and other
// control characters become spaces, and surrounding blanks go.
func oneLine(v string) string {
	return strings.TrimSpace(strings.Map(func(r rune) rune {
		if r < ' ' || r == 0x7f {
			return ' '
		}
		return r
	}, v))
}

// Marshal returns the reason file's content.
func (r Reason) Marshal() []byte {
	var b bytes.Buffer
	for _, kv := range [][2]string{
		{"Next-Hop", r.NextHop}, {"Reply", r.Reply}, {"Sender", r.Sender},
		{"Recipient", r.Recipient}, {"Date", r.Date.Format(time.RFC1123Z)},
	} {
		b.WriteString(kv[0])
		b.WriteString(": ")
		b.WriteString(oneLine(kv[1]))
		b.WriteByte('\n')
	}
	return b.Bytes()
}

// ParseReason reads a reason file. It never fails: a missing or unreadable
// field is left empty (a zero Date), so a damaged file still lists its
// message.
func ParseReason(data []byte) Reason {
	var r Reason
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(nil, 64<<10)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		v = strings.TrimSpace(v)
		switch k {
		case "Next-Hop":
			r.NextHop = v
		case "Reply":
			r.Reply = v
		case "Sender":
			r.Sender = v
		case "Recipient":
			r.Recipient = v
		case "Date":
			r.Date, _ = time.Parse(time.RFC1123Z, v)
		}
	}
	return r
}
