package main

// A reader of strace logs and the check TestFsyncOrder runs on them: the
// durable steps of every delivery in the order the kernel saw them.

import (
	"bufio"
	"fmt"
	"io"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
)

// straceCall is one system call in a log written by
// `strace -f -ttt -T -yy -o FILE`: the thread that made it, its arguments
// and result as strace printed them, and when it started and ended.
//
// Start is the timestamp of the line where the call starts (its only line,
// or the "<unfinished ...>" one); End is the timestamp of the
// "<... resumed>" line, or for a call on one line its timestamp plus its
// -T duration, capped at the next line's timestamp (the call had ended
// when strace printed that line). StartLine and EndLine number the log's
// lines from 1. Line order is the order in which strace saw the calls
// enter and leave the kernel: a call whose EndLine is before another's
// StartLine had returned before the other one began (strace lets a thread
// run a call only after it has printed its start).
type straceCall struct {
	TID                int
	Name               string
	Args               []string // the top-level arguments as printed
	Ret                string   // the result as printed: "0", "7</a/b>", "-1 EAGAIN (...)", "?"
	Start, End         int64    // µs since the epoch (-ttt)
	StartLine, EndLine int
}

var (
	straceLineRE = regexp.MustCompile(`^(\d+) +(\d+)\.(\d{1,6}) (.*)$`)
	syscallRE    = regexp.MustCompile(`^[a-z_0-9]+$`)
)

// parseStrace reads a log of `strace -f -ttt -T -yy -o FILE` and returns
// its system calls in the order they started, each "<unfinished ...>" line
// joined with its "<... NAME resumed>" line of the same thread. Signal and
// exit lines ("--- SIGURG ...", "+++ exited ...") are skipped; so is a
// call still unfinished at the end of the log (it never returned). Any
// other line it cannot read is an error naming its line number.
func parseStrace(r io.Reader) ([]straceCall, error) {
	type pending struct {
		name, args string
		ts         int64
		line       int
	}
	var (
		calls  []straceCall
		stamps []int64             // stamps[i]: the timestamp of line i+1
		open   = map[int]pending{} // TID -> its unfinished call
		oneLn  []int               // calls printed on one line, to cap End
	)
	sc := bufio.NewScanner(r)
	sc.Buffer(nil, 16<<20)
	n := 0
	for sc.Scan() {
		n++
		text := sc.Text()
		m := straceLineRE.FindStringSubmatch(text)
		if m == nil {
			return nil, fmt.Errorf("strace log:%d: no \"PID SECONDS.MICROS\" prefix: %.80q", n, text)
		}
		tid, _ := strconv.Atoi(m[1])
		sec, _ := strconv.ParseInt(m[2], 10, 64)
		frac := m[3] + strings.Repeat("0", 6-len(m[3]))
		usec, _ := strconv.ParseInt(frac, 10, 64)
		ts := sec*1_000_000 + usec
		stamps = append(stamps, ts)
		rest := m[4]
		switch {
		case strings.HasPrefix(rest, "---") || strings.HasPrefix(rest, "+++"):
			continue
		case strings.HasPrefix(rest, "<... "):
			name, after, ok := strings.Cut(strings.TrimPrefix(rest, "<... "), " resumed>")
			p, had := open[tid]
			if !ok || !had || p.name != name {
				return nil, fmt.Errorf("strace log:%d: %q resumes no unfinished call of thread %d", n, rest, tid)
			}
			delete(open, tid)
			c, err := parseCall(tid, name, p.args+after)
			if err != nil {
				return nil, fmt.Errorf("strace log:%d (started on line %d): %w", n, p.line, err)
			}
			c.Start, c.StartLine = p.ts, p.line
			c.End, c.EndLine = ts, n
			calls = append(calls, c)
		case strings.HasSuffix(rest, " <unfinished ...>"):
			name, args, ok := strings.Cut(strings.TrimSuffix(rest, " <unfinished ...>"), "(")
			if !ok || !syscallRE.MatchString(name) {
				return nil, fmt.Errorf("strace log:%d: cannot read %q", n, rest)
			}
			if _, had := open[tid]; had {
				return nil, fmt.Errorf("strace log:%d: thread %d starts %s with a call unfinished", n, tid, name)
			}
			open[tid] = pending{name: name, args: args, ts: ts, line: n}
		default:
			name, args, ok := strings.Cut(rest, "(")
			if !ok || !syscallRE.MatchString(name) {
				return nil, fmt.Errorf("strace log:%d: cannot read %q", n, rest)
			}
			c, err := parseCall(tid, name, args)
			if err != nil {
				return nil, fmt.Errorf("strace log:%d: %w", n, err)
			}
			c.Start, c.StartLine, c.EndLine = ts, n, n
			c.End += ts // parseCall left the -T duration there
			oneLn = append(oneLn, len(calls))
			calls = append(calls, c)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("strace log: %w", err)
	}
	for _, i := range oneLn {
		if l := calls[i].EndLine; l < len(stamps) && calls[i].End > stamps[l] {
			calls[i].End = stamps[l]
		}
	}
	sort.SliceStable(calls, func(i, j int) bool { return calls[i].StartLine < calls[j].StartLine })
	return calls, nil
}

// parseCall reads what follows "NAME(" on a call's line (both halves of an
// unfinished call joined): the arguments, ") = RESULT" and an optional
// " <SECONDS>" duration, which it returns in End (µs).
func parseCall(tid int, name, s string) (straceCall, error) {
	c := straceCall{TID: tid, Name: name}
	depth, start := 0, 0
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '"':
			i = skipQuoted(s, i)
		case '<':
			if i > 0 && isDecorated(s[i-1]) {
				i = skipDecoration(s, i)
			}
		case '(', '[', '{':
			depth++
		case ']', '}':
			depth--
		case ')':
			if depth > 0 {
				depth--
				continue
			}
			if a := strings.TrimSpace(s[start:i]); a != "" || len(c.Args) > 0 {
				c.Args = append(c.Args, a)
			}
			ret, ok := strings.CutPrefix(s[i+1:], " = ")
			if !ok {
				return c, fmt.Errorf("%s: no \" = \" after the arguments: %.80q", name, s[i+1:])
			}
			if j := strings.LastIndex(ret, " <"); j >= 0 && strings.HasSuffix(ret, ">") {
				if d, err := strconv.ParseFloat(ret[j+2:len(ret)-1], 64); err == nil {
					c.End = int64(d*1e6 + 0.5)
					ret = ret[:j]
				}
			}
			c.Ret = ret
			return c, nil
		case ',':
			if depth == 0 {
				c.Args = append(c.Args, strings.TrimSpace(s[start:i]))
				start = i + 1
			}
		}
	}
	return c, fmt.Errorf("%s: no closing parenthesis: %.80q", name, s)
}

// isDecorated reports whether a '<' after b starts a -y decoration: after
// an fd number ("7</a/b>") or AT_FDCWD ("AT_FDCWD</>").
func isDecorated(b byte) bool { return b >= '0' && b <= '9' || b == 'D' }

// skipQuoted returns the index of the quote that closes the string opening
// at s[i].
func skipQuoted(s string, i int) int {
	for i++; i < len(s); i++ {
		switch s[i] {
		case '\\':
			i++
		case '"':
			return i
		}
	}
	return len(s)
}

// skipDecoration returns the index of the '>' that closes the decoration
// opening at s[i] ("<TCP:[a:1->b:2]>" holds a '>' of its own, in brackets).
func skipDecoration(s string, i int) int {
	depth := 0
	for i++; i < len(s); i++ {
		switch s[i] {
		case '"':
			i = skipQuoted(s, i)
		case '[':
			depth++
		case ']':
			depth--
		case '>':
			if depth <= 0 {
				return i
			}
		}
	}
	return len(s)
}

// fdArg splits an fd argument or result decorated by -yy, "7</a/b>" or
// "AT_FDCWD</a>", into the fd and what it refers to.
func fdArg(a string) (fd, what string) {
	i := strings.IndexByte(a, '<')
	if i < 0 || !strings.HasSuffix(a, ">") {
		return a, ""
	}
	return a[:i], a[i+1 : len(a)-1]
}

// fdPath returns what the fd in argument i refers to ("" if none).
func (c straceCall) fdPath(i int) string {
	if i >= len(c.Args) {
		return ""
	}
	_, what := fdArg(c.Args[i])
	return what
}

// retInt is the call's result as a number (-1 for an error or "?").
func (c straceCall) retInt() int64 {
	f, _, _ := strings.Cut(c.Ret, "<")
	n, err := strconv.ParseInt(strings.TrimSpace(f), 10, 64)
	if err != nil {
		return -1
	}
	return n
}

// pathArg resolves the path in argument i against the directory fd in
// argument dirfd (-1: none), as openat(2) and renameat(2) do.
func (c straceCall) pathArg(dirfd, i int) string {
	if i >= len(c.Args) {
		return ""
	}
	p, _ := unquoteStrace(c.Args[i])
	if !filepath.IsAbs(p) && dirfd >= 0 {
		p = filepath.Join(c.fdPath(dirfd), p)
	}
	return filepath.Clean(p)
}

// written returns the bytes a write-like call (write, writev, sendto,
// sendmsg, pwrite64, ...) passed to the kernel and the kernel took: its
// string arguments, in order, cut at its result. truncated says strace
// printed a string only in part (-s too small).
func (c straceCall) written() (b []byte, truncated bool) {
	for _, a := range c.Args {
		for i := 0; i < len(a); i++ {
			if a[i] != '"' {
				continue
			}
			j := skipQuoted(a, i)
			s, _ := unquoteStrace(a[i : j+1])
			b = append(b, s...)
			if strings.HasPrefix(a[j+1:], "...") {
				truncated = true
			}
			i = j
		}
	}
	n := c.retInt()
	switch {
	case n < 0:
		return nil, false
	case n < int64(len(b)):
		return b[:n], false
	case n > int64(len(b)):
		truncated = true
	}
	return b, truncated
}

// unquoteStrace decodes a string as strace prints it: in double quotes,
// with \" \\ \n \r \t \v \f, octal \NNN and (with -x) hex \xHH escapes, and
// "..." after the closing quote if -s cut it.
func unquoteStrace(a string) (string, bool) {
	a = strings.TrimSuffix(a, "...")
	if len(a) < 2 || a[0] != '"' || a[len(a)-1] != '"' {
		return a, false
	}
	a = a[1 : len(a)-1]
	var b strings.Builder
	for i := 0; i < len(a); i++ {
		if a[i] != '\\' || i+1 == len(a) {
			b.WriteByte(a[i])
			continue
		}
		i++
		switch e := a[i]; e {
		case 'n':
			b.WriteByte('\n')
		case 'r':
			b.WriteByte('\r')
		case 't':
			b.WriteByte('\t')
		case 'v':
			b.WriteByte('\v')
		case 'f':
			b.WriteByte('\f')
		case 'x':
			v, err := strconv.ParseUint(a[i+1:min(i+3, len(a))], 16, 8)
			if err != nil {
				b.WriteByte(e)
				continue
			}
			b.WriteByte(byte(v))
			i += 2
		default:
			if e < '0' || e > '7' {
				b.WriteByte(e) // \" and \\
				continue
			}
			v := 0
			k := i
			for ; k < len(a) && k < i+3 && a[k] >= '0' && a[k] <= '7'; k++ {
				v = v*8 + int(a[k]-'0')
			}
			b.WriteByte(byte(v))
			i = k - 1
		}
	}
	return b.String(), true
}

// lmtpConn is one LMTP connection as its client saw it: its local port
// (the server's socket names it as the peer) and its messages in the order
// sent, each with its recipients and what became of them.
type lmtpConn struct {
	Port int
	Msgs []lmtpMsg
}

// lmtpMsg is one message of an lmtpConn.
type lmtpMsg struct {
	Rcpts []string // RCPT TO, in order
	Codes []int    // the reply code after DATA for each, as the client read it
	Files []string // for each: the file in new/ with its copy, "" if none
}

// orderReport counts what checkFsyncOrder checked.
type orderReport struct {
	Files     int   // files in new/ whose data fsync and rename were checked
	Acks      int   // 250 replies after DATA whose new/ fsync was checked
	DirFsyncs int   // successful fsyncs of a new/ directory in the log
	MinGap    int64 // µs from a new/ fsync's end to its 250's write, the least
}

// Calls that write data, and calls that flush a file or directory.
var (
	writeCalls = map[string]bool{"write": true, "writev": true, "pwrite64": true, "pwritev": true,
		"pwritev2": true, "sendto": true, "sendmsg": true, "copy_file_range": true, "sendfile": true, "splice": true}
	syncCalls = map[string]bool{"fsync": true, "fdatasync": true}
)

// before reports whether a returned before b began: by the log's line
// order and by its timestamps both.
func before(a, b *straceCall) bool { return a.EndLine < b.StartLine && a.End <= b.Start }

// checkFsyncOrder checks the promise of a 250 against the system calls
// of `listgate serve` (its LMTP door on serverPort) as strace logged them,
// and returns every breach it finds:
//
//  1. Each file in newFiles was created (O_CREAT) in the tmp/ next to its
//     new/, under the same name, and renamed from there into new/; an
//     fsync or fdatasync of the fd it was created on began after its last
//     write had returned and returned 0 before that rename began; nothing
//     wrote to it under its new/ name.
//  2. For each 250 after DATA that the server wrote on a connection of
//     conns, some fsync or fdatasync of that recipient's new/ directory
//     began after the rename of its file into new/ had returned, and
//     returned 0 before the write carrying the reply's first byte began.
//     The reply is found in the bytes the server wrote to the
//     connection's socket (one write may carry several replies): after the
//     n-th 354 on a connection come the replies to the recipients of its
//     n-th message, in order.
//  3. No recipient got a 250 without a file in new/, and each reply code
//     read from the log is the one the client read.
func checkFsyncOrder(calls []straceCall, serverPort int, conns []lmtpConn, newFiles []string) (orderReport, []string) {
	var (
		rep      orderReport
		problems []string
		created  = map[string]*straceCall{}   // tmp/NAME -> its O_CREAT open
		writes   = map[string][]*straceCall{} // file -> writes to it
		syncs    = map[string][]*straceCall{} // file or directory -> its successful fsyncs
		renames  = map[string]*straceCall{}   // new/NAME -> its rename
		from     = map[string]string{}        // new/NAME -> the path renamed
		sockets  = map[int][]*straceCall{}    // client port -> writes to its connection
	)
	bad := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }
	for i := range calls {
		c := &calls[i]
		switch {
		case c.Name == "open" || c.Name == "openat" || c.Name == "openat2" || c.Name == "creat":
			if (c.Name == "creat" || strings.Contains(strings.Join(c.Args, ","), "O_CREAT")) && c.retInt() >= 0 {
				if _, p := fdArg(c.Ret); p != "" && created[p] == nil {
					created[p] = c
				}
			}
		case writeCalls[c.Name]:
			what := c.fdPath(0)
			if c.Name == "copy_file_range" || c.Name == "splice" {
				what = c.fdPath(2)
			}
			if local, peer, ok := tcpPorts(what); ok {
				if local == serverPort {
					sockets[peer] = append(sockets[peer], c)
				}
			} else if what != "" {
				writes[what] = append(writes[what], c)
			}
		case syncCalls[c.Name]:
			if c.Ret == "0" {
				syncs[c.fdPath(0)] = append(syncs[c.fdPath(0)], c)
			}
		case c.Name == "rename" || c.Name == "renameat" || c.Name == "renameat2":
			if c.Ret != "0" {
				continue
			}
			var old, dst string
			if c.Name == "rename" {
				old, dst = c.pathArg(-1, 0), c.pathArg(-1, 1)
			} else {
				old, dst = c.pathArg(0, 1), c.pathArg(2, 3)
			}
			if renames[dst] == nil {
				renames[dst], from[dst] = c, old
			}
		}
	}
	for p, ss := range syncs {
		if filepath.Base(p) == "new" {
			rep.DirFsyncs += len(ss)
		}
	}

	// 1: the file's data on disk before its name in new/.
	for _, file := range newFiles {
		rep.Files++
		r := renames[file]
		if r == nil {
			bad("%s: no rename into new/ in the log", file)
			continue
		}
		tmp := filepath.Join(filepath.Dir(filepath.Dir(file)), "tmp", filepath.Base(file))
		if from[file] != tmp {
			bad("%s: renamed from %s, not from %s", file, from[file], tmp)
			continue
		}
		o := created[tmp]
		if o == nil {
			bad("%s: no open with O_CREAT of %s in the log", file, tmp)
			continue
		}
		fd, _ := fdArg(o.Ret)
		last := o
		for _, w := range writes[tmp] {
			if w.EndLine > last.EndLine {
				last = w
			}
		}
		for _, w := range writes[file] {
			bad("%s: written to under its name in new/ (log line %d)", file, w.StartLine)
		}
		if !before(last, r) {
			bad("%s: written (log line %d) after its rename began (line %d)", file, last.StartLine, r.StartLine)
			continue
		}
		ok := false
		for _, s := range syncs[tmp] {
			if f, _ := fdArg(s.Args[0]); f == fd && before(last, s) && before(s, r) {
				ok = true
				break
			}
		}
		if !ok {
			bad("%s: no fsync of fd %s (%s, log line %d) between its last write (line %d) and its rename (line %d)",
				file, fd, tmp, o.StartLine, last.StartLine, r.StartLine)
		}
	}

	// 2 and 3: new/ on disk before each 250, and a file for each.
	rep.MinGap = -1
	for _, conn := range conns {
		replies, err := lmtpReplies(sockets[conn.Port])
		if err != nil {
			bad("connection from port %d: %v", conn.Port, err)
			continue
		}
		m := 0
		for i := 0; i < len(replies); i++ {
			if replies[i].code != 354 {
				continue
			}
			if m == len(conn.Msgs) {
				bad("connection from port %d: a 354 (log line %d) after its %d messages", conn.Port, replies[i].call.StartLine, m)
				break
			}
			msg := conn.Msgs[m]
			got := replies[i+1 : min(i+1+len(msg.Rcpts), len(replies))]
			if len(got) < len(msg.Rcpts) {
				bad("connection from port %d, message %d: %d replies after DATA in the log for %d recipients", conn.Port, m, len(got), len(msg.Rcpts))
			}
			for k, rp := range got {
				rcpt := msg.Rcpts[k]
				where := fmt.Sprintf("connection from port %d, message %d, <%s>", conn.Port, m, rcpt)
				if k < len(msg.Codes) && rp.code != msg.Codes[k] {
					bad("%s: the log has reply %d (line %d), the client read %d", where, rp.code, rp.call.StartLine, msg.Codes[k])
				}
				if rp.code != 250 {
					continue
				}
				rep.Acks++
				file := ""
				if k < len(msg.Files) {
					file = msg.Files[k]
				}
				if file == "" {
					bad("%s: 250 (log line %d) but no file in new/", where, rp.call.StartLine)
					continue
				}
				r := renames[file]
				if r == nil {
					bad("%s: 250 (log line %d) but %s was never renamed into new/", where, rp.call.StartLine, file)
					continue
				}
				var d *straceCall
				for _, s := range syncs[filepath.Dir(file)] {
					if before(r, s) && before(s, rp.call) {
						d = s
					}
				}
				if d == nil {
					bad("%s: no fsync of %s began after the rename of %s (log line %d) and returned before the 250 was written (line %d)",
						where, filepath.Dir(file), filepath.Base(file), r.StartLine, rp.call.StartLine)
					continue
				}
				if gap := rp.call.Start - d.End; rep.MinGap < 0 || gap < rep.MinGap {
					rep.MinGap = gap
				}
			}
			i += len(got)
			m++
		}
		if m < len(conn.Msgs) {
			bad("connection from port %d: %d replies to DATA (354) in the log for %d messages", conn.Port, m, len(conn.Msgs))
		}
	}
	return rep, problems
}

// tcpPorts reads a socket as -yy prints it, "TCP:[127.0.0.1:2525->127.0.0.1:40000]"
// (or TCPv6), into its local and peer ports.
func tcpPorts(what string) (local, peer int, ok bool) {
	rest, ok := strings.CutPrefix(what, "TCP:[")
	if !ok {
		if rest, ok = strings.CutPrefix(what, "TCPv6:["); !ok {
			return 0, 0, false
		}
	}
	l, p, ok := strings.Cut(strings.TrimSuffix(rest, "]"), "->")
	if !ok {
		return 0, 0, false
	}
	port := func(hp string) int {
		n, _ := strconv.Atoi(hp[strings.LastIndexByte(hp, ':')+1:])
		return n
	}
	return port(l), port(p), true
}

// lmtpReply is one reply a server wrote: its code and the write call that
// carried its first byte.
type lmtpReply struct {
	code int
	call *straceCall
}

// lmtpReplies splits what the writes to one connection carried into
// replies (RFC 5321 §4.2: "250-" lines continue a reply, "250 " ends it).
func lmtpReplies(ws []*straceCall) ([]lmtpReply, error) {
	if len(ws) == 0 {
		return nil, fmt.Errorf("no writes to its socket in the log")
	}
	var (
		replies []lmtpReply
		line    []byte
		first   *straceCall // the write with the line's first byte
		inReply bool        // the last line was a "NNN-" one
	)
	for _, w := range ws {
		b, truncated := w.written()
		if truncated {
			return nil, fmt.Errorf("log line %d: the write is cut short (strace -s too small)", w.StartLine)
		}
		for _, c := range b {
			if len(line) == 0 {
				first = w
			}
			line = append(line, c)
			if c != '\n' {
				continue
			}
			l := strings.TrimRight(string(line), "\r\n")
			line = line[:0]
			if len(l) < 3 {
				return nil, fmt.Errorf("log line %d: %q is no reply", first.StartLine, l)
			}
			code, err := strconv.Atoi(l[:3])
			if err != nil {
				return nil, fmt.Errorf("log line %d: %q is no reply", first.StartLine, l)
			}
			if !inReply {
				replies = append(replies, lmtpReply{code: code, call: first})
			}
			inReply = len(l) > 3 && l[3] == '-'
		}
	}
	if len(line) > 0 {
		return nil, fmt.Errorf("log line %d: %q is an unended reply", first.StartLine, line)
	}
	return replies, nil
}
