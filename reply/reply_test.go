package reply

import (
	"fmt"
	"regexp"
	"strings"
	"testing"

	"github.com/listgate/listgate/internal/corpus"
	"github.com/listgate/listgate/lists"
)

// TestWire pins every answer of the table as the door puts it on the
// wire. The texts must not change (senders' servers and tools match on
// them); a change here is a change of behaviour for every sender, so it
// takes a second, deliberate edit.
func TestWire(t *testing.T) {
	const (
		unavail  = "550 5.1.1 Requested action not taken: mailbox unavailable"
		lookup   = "451 4.3.0 Temporary lookup failure"
		tooLarge = "552 5.3.4 Message size exceeds fixed limit"
		local    = "451 4.3.0 Requested action aborted: local error in processing"
	)
	// Per outcome: LMTP RCPT, LMTP DATA, milter RCPT, milter DATA,
	// policy RCPT, socketmap RCPT. Policy and socketmap give nothing
	// after the message.
	want := map[Outcome][6]string{
		Accept:     {"250 2.0.0 (go-smtp's own text)", "250 2.1.5 Ok", "continue", "accept", "DUNNO", "OK"},
		Unknown:    {unavail, "-", unavail, "-", unavail, "NOTFOUND"},
		NotServed:  {unavail, "-", "continue", "-", "DUNNO", "NOTFOUND"},
		Broken:     {lookup, "-", lookup, "-", lookup, "TEMP Temporary lookup failure"},
		TooLarge:   {tooLarge, tooLarge, tooLarge, tooLarge, tooLarge, "-"},
		Alias:      {lookup, "-", "continue", "-", "DUNNO", "OK"},
		Observed:   {unavail, "-", "continue", "-", "DUNNO", "OK"},
		LocalError: {local, local, local, local, local, "TEMP Requested action aborted: local error in processing"},
		NoSpace:    {"452 4.3.1 Insufficient system storage", "452 4.3.1 Insufficient system storage", "-", "-", "-", "-"},

		TooManyRecipients:  {"452 4.5.3 Error: too many recipients", "-", "-", "-", "-", "-"},
		TooManyConnections: {"-", "-", "-", "-", "-", "-"},
	}
	if len(want) != len(Outcomes()) {
		t.Fatalf("%d outcomes pinned, the table has %d", len(want), len(Outcomes()))
	}
	// At Connect, only the LMTP door answers, and only when refusing a
	// connection over a limit.
	for _, o := range Outcomes() {
		for _, d := range Doors() {
			want := "-"
			if d == LMTP && o == TooManyConnections {
				want = "421 4.7.0 Error: too many connections"
			}
			if got := For(d, Connect, o).String(); got != want {
				t.Errorf("%v at connect for %v: %q, want %q", d, o, got, want)
			}
		}
	}
	for _, o := range Outcomes() {
		got := [6]string{
			For(LMTP, RCPT, o).String(), For(LMTP, Data, o).String(),
			For(Milter, RCPT, o).String(), For(Milter, Data, o).String(),
			For(Policy, RCPT, o).String(), For(Socketmap, RCPT, o).String(),
		}
		if got != want[o] {
			t.Errorf("%v:\n got %q\nwant %q", o, got, want[o])
		}
		for _, d := range []Door{Policy, Socketmap} {
			if a := For(d, Data, o); a.Action != None {
				t.Errorf("%v after the message for %v: %v, want none", d, o, a)
			}
		}
	}
}

// TestTable checks the table's own rules: every door and stage carries
// its door and stage, a Send has a reply whose class agrees with its code
// (RFC 2034 §4), refusals at RCPT are the same for the LMTP door, the
// milter and the policy service, and unknown values are answered as a
// local error.
func TestTable(t *testing.T) {
	for _, row := range Table() {
		for _, d := range Doors() {
			for _, st := range []Stage{Connect, RCPT, Data} {
				a := For(d, st, row.Outcome)
				if a.Door != d || a.Stage != st {
					t.Errorf("For(%v, %v, %v) says door %v stage %v", d, st, row.Outcome, a.Door, a.Stage)
				}
				if (a.Action == Send || a.Action == Temp) != !a.Reply.IsZero() {
					t.Errorf("For(%v, %v, %v) = %+v: a reply exactly for Send and Temp", d, st, row.Outcome, a)
				}
				if a.Action == Send {
					c := a.Reply.EnhancedCode()
					if c[0] != a.Reply.Code/100 || c[0] == 3 || a.Reply.Text == "" || strings.ContainsAny(a.Reply.Text, "\r\n") {
						t.Errorf("For(%v, %v, %v): malformed reply %q", d, st, row.Outcome, a.Reply)
					}
				}
			}
		}
		if row.When == "" {
			t.Errorf("%v: no When", row.Outcome)
		}
		l, m, p := For(LMTP, RCPT, row.Outcome), For(Milter, RCPT, row.Outcome), For(Policy, RCPT, row.Outcome)
		if l.Action == Send && m.Action == Send && (l.Reply != m.Reply || m.Reply != p.Reply) {
			t.Errorf("%v: the doors refuse differently at RCPT: %v, %v, %v", row.Outcome, l, m, p)
		}
	}
	for _, o := range []Outcome{0, numOutcomes + 1, 255} {
		if got, want := For(LMTP, RCPT, o), For(LMTP, RCPT, LocalError); got != want {
			t.Errorf("For(LMTP, RCPT, %d) = %v, want the local error %v", o, got, want)
		}
	}
	if a := For(0, RCPT, Accept); a.Action != None {
		t.Errorf("For(invalid door) = %v, want none", a)
	}
	if a := For(LMTP, 0, Accept); a.Action != None {
		t.Errorf("For(invalid stage) = %v, want none", a)
	}
}

// TestOf checks that every lists status has its outcome, printed the same.
func TestOf(t *testing.T) {
	for s := lists.Status(0); s < 200; s++ {
		name := s.String()
		o := Of(s)
		if name == "invalid" {
			if o != LocalError {
				t.Errorf("Of(%d) = %v, want error", s, o)
			}
			continue
		}
		if o.String() != name {
			t.Errorf("Of(%v) = %v, printed differently", s, o)
		}
		if back, ok := lists.ParseStatus(o.String()); !ok || back != s {
			t.Errorf("Of(%v) = %v does not parse back", s, o)
		}
	}
}

// TestForDoor checks the stage `listgate check` shows for each door.
func TestForDoor(t *testing.T) {
	tests := []struct {
		door   Door
		status lists.Status
		stage  Stage
		want   string
	}{
		{LMTP, lists.Accept, Data, "250 2.1.5 Ok"},
		{LMTP, lists.Unknown, RCPT, "550 5.1.1 Requested action not taken: mailbox unavailable"},
		{LMTP, lists.NotServed, RCPT, "550 5.1.1 Requested action not taken: mailbox unavailable"},
		{LMTP, lists.Broken, RCPT, "451 4.3.0 Temporary lookup failure"},
		{LMTP, lists.TooLarge, RCPT, "552 5.3.4 Message size exceeds fixed limit"},
		{Milter, lists.Accept, Data, "accept"},
		{Milter, lists.NotServed, RCPT, "continue"},
		{Milter, lists.Unknown, RCPT, "550 5.1.1 Requested action not taken: mailbox unavailable"},
		{Policy, lists.Accept, RCPT, "DUNNO"},
		{Policy, lists.Broken, RCPT, "451 4.3.0 Temporary lookup failure"},
		{Socketmap, lists.Accept, RCPT, "OK"},
		{Socketmap, lists.NotServed, RCPT, "NOTFOUND"},
		{Socketmap, lists.Broken, RCPT, "TEMP Temporary lookup failure"},
		{LMTP, lists.Alias, RCPT, "451 4.3.0 Temporary lookup failure"},
		{Milter, lists.Alias, RCPT, "continue"},
		{Policy, lists.Alias, RCPT, "DUNNO"},
		{Socketmap, lists.Alias, RCPT, "OK"},
		{LMTP, lists.Observed, RCPT, "550 5.1.1 Requested action not taken: mailbox unavailable"},
		{Milter, lists.Observed, RCPT, "continue"},
		{Policy, lists.Observed, RCPT, "DUNNO"},
		{Socketmap, lists.Observed, RCPT, "OK"},
	}
	for _, tt := range tests {
		a := ForDoor(tt.door, tt.status)
		if a.Stage != tt.stage || a.String() != tt.want || a.Door != tt.door {
			t.Errorf("ForDoor(%v, %v) = %v at %v, want %q at %v", tt.door, tt.status, a, a.Stage, tt.want, tt.stage)
		}
	}
}

// TestCorpus checks the reply codes of the verdict corpus (the LMTP
// door's, as `listgate check` prints them) against the table.
func TestCorpus(t *testing.T) {
	cases, err := corpus.Load()
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range cases {
		r := ForDoor(LMTP, c.Status).Reply
		if r.Code != c.Code || r.Status() != c.Enhanced {
			t.Errorf("verdicts.txt:%d: reply for %q = %d %s, want %d %s", c.Line, c.Rcpt, r.Code, r.Status(), c.Code, c.Enhanced)
		}
	}
	if len(cases) < 40 {
		t.Errorf("corpus has %d cases; it lost some", len(cases))
	}
}

// TestEnhanced checks the enhanced status codes: well-formed
// subject.detail, and the class taken from the reply code.
func TestEnhanced(t *testing.T) {
	wellFormed := regexp.MustCompile(`^[0-9]{1,3}\.[0-9]{1,3}$`)
	for _, e := range []Enhanced{SeOther0Undefined0, SeAddr1UnknownDestMailbox1, SeAddr1DestValid5,
		SeSys3Other0, SeSys3StorageFull1, SeSys3MsgLimitExceeded4, SeProto5BadCmdOrSeq1} {
		if !wellFormed.MatchString(string(e)) {
			t.Errorf("enhanced code %q is not subject.detail", e)
		}
	}
	tests := []struct {
		r    Reply
		want string
	}{
		{Reply{C451LocalErr, SeSys3Other0, "x"}, "451 4.3.0 x"},
		{Reply{C550MailboxUnavail, SeAddr1UnknownDestMailbox1, "y"}, "550 5.1.1 y"},
		{Reply{C250Completed, SeAddr1DestValid5, "Ok"}, "250 2.1.5 Ok"},
		{Reply{C503BadCmdSeq, SeProto5BadCmdOrSeq1, "z"}, "503 5.5.1 z"},
		{Reply{C452StorageFull, "bogus", "w"}, "452 4.0.0 w"},
	}
	for _, tt := range tests {
		if got := tt.r.String(); got != tt.want {
			t.Errorf("%#v.String() = %q, want %q", tt.r, got, tt.want)
		}
	}
	if got := (Reply{C552ExceededStorage, SeSys3MsgLimitExceeded4, ""}).EnhancedCode(); got != [3]int{5, 3, 4} {
		t.Errorf("EnhancedCode = %v", got)
	}
}

// TestNames checks the names of outcomes and doors.
func TestNames(t *testing.T) {
	var names []string
	for _, o := range Outcomes() {
		names = append(names, o.String())
	}
	if got := strings.Join(names, " "); got != "accept unknown not-served tempfail too-large alias observed error no-space too-many-recipients too-many-connections" {
		t.Errorf("outcomes: %s", got)
	}
	for _, d := range Doors() {
		if back, ok := ParseDoor(d.String()); !ok || back != d {
			t.Errorf("ParseDoor(%q) = %v, %v", d, back, ok)
		}
	}
	if _, ok := ParseDoor("smtp"); ok {
		t.Error(`ParseDoor("smtp") succeeded`)
	}
	if got := fmt.Sprint(Outcome(0), Door(0), Stage(0)); got != "invalid invalid invalid" {
		t.Errorf("zero values print %q", got)
	}
}
