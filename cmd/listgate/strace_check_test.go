package main

import (
	"reflect"
	"strings"
	"testing"
)

func TestParseStrace(t *testing.T) {
	for _, tc := range []struct {
		name string
		log  string
		want []straceCall
		err  string // a part of the error, if one is wanted
	}{{
		name: "one line, -T, decorated result",
		log: `7 1700000000.000100 openat(AT_FDCWD</w>, "/s/a/post/tmp/A,S=9", O_WRONLY|O_CREAT|O_EXCL|O_CLOEXEC, 0640) = 8</s/a/post/tmp/A,S=9> <0.000050>
`,
		want: []straceCall{{TID: 7, Name: "openat", Args: []string{"AT_FDCWD</w>", `"/s/a/post/tmp/A,S=9"`, "O_WRONLY|O_CREAT|O_EXCL|O_CLOEXEC", "0640"},
			Ret: "8</s/a/post/tmp/A,S=9>", Start: 1700000000_000100, End: 1700000000_000150, StartLine: 1, EndLine: 1}},
	}, {
		name: "unfinished and resumed across threads, signals and exits skipped",
		log: `7 1700000000.000100 fsync(8</s/a/post/tmp/A> <unfinished ...>
9 1700000000.000200 --- SIGURG {si_signo=SIGURG, si_code=SI_TKILL, si_pid=1, si_uid=0} ---
9 1700000000.000300 write(5<TCP:[127.0.0.1:2525->127.0.0.1:40001]>, "250 ok\r\n", 8) = 8 <0.000010>
7 1700000000.000900 <... fsync resumed>) = 0 <0.000800>
9 1700000000.001000 +++ exited with 0 +++
`,
		want: []straceCall{
			{TID: 7, Name: "fsync", Args: []string{"8</s/a/post/tmp/A>"}, Ret: "0", Start: 1700000000_000100, End: 1700000000_000900, StartLine: 1, EndLine: 4},
			{TID: 9, Name: "write", Args: []string{"5<TCP:[127.0.0.1:2525->127.0.0.1:40001]>", `"250 ok\r\n"`, "8"}, Ret: "8",
				Start: 1700000000_000300, End: 1700000000_000310, StartLine: 3, EndLine: 3},
		},
	}, {
		name: "arguments printed in both halves; an error result",
		log: `7 1700000000.1 read(3</x>,  <unfinished ...>
8 1700000000.2 write(4<TCP:[127.0.0.1:2525->127.0.0.1:40001]>, "x", 1) = -1 EAGAIN (Resource temporarily unavailable) <0.000003>
7 1700000000.3 <... read resumed>"ab", 10) = 2 <0.2>
`,
		want: []straceCall{
			{TID: 7, Name: "read", Args: []string{"3</x>", `"ab"`, "10"}, Ret: "2", Start: 1700000000_100000, End: 1700000000_300000, StartLine: 1, EndLine: 3},
			{TID: 8, Name: "write", Args: []string{"4<TCP:[127.0.0.1:2525->127.0.0.1:40001]>", `"x"`, "1"}, Ret: "-1 EAGAIN (Resource temporarily unavailable)",
				Start: 1700000000_200000, End: 1700000000_200003, StartLine: 2, EndLine: 2},
		},
	}, {
		name: "a one-line call ends no later than the next line",
		log: `7 1700000000.000100 fsync(9</s/a/post/new>) = 0 <0.005000>
8 1700000000.000400 rename("/a", "/b") = 0
`,
		want: []straceCall{
			{TID: 7, Name: "fsync", Args: []string{"9</s/a/post/new>"}, Ret: "0", Start: 1700000000_000100, End: 1700000000_000400, StartLine: 1, EndLine: 1},
			{TID: 8, Name: "rename", Args: []string{`"/a"`, `"/b"`}, Ret: "0", Start: 1700000000_000400, End: 1700000000_000400, StartLine: 2, EndLine: 2},
		},
	}, {
		name: "a call never resumed is left out",
		log: `7 1700000000.000100 fsync(9</s/a/post/new> <unfinished ...>
7 1700000000.000200 +++ killed by SIGKILL +++
`,
	}, {
		name: "resumed without its start",
		log:  "7 1700000000.000100 <... fsync resumed>) = 0 <0.000800>\n",
		err:  "strace log:1: \"<... fsync resumed>) = 0 <0.000800>\" resumes no unfinished call of thread 7",
	}, {
		name: "no prefix",
		log:  "strace: Process 7 attached\n",
		err:  "strace log:1: no \"PID SECONDS.MICROS\" prefix",
	}, {
		name: "no result",
		log:  "7 1700000000.000100 fsync(9</s/a/post/new>)\n",
		err:  "strace log:1: fsync: no \" = \" after the arguments",
	}} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseStrace(strings.NewReader(tc.log))
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("error %v, want one with %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got\n%+v\nwant\n%+v", got, tc.want)
			}
		})
	}
}

func TestStraceWritten(t *testing.T) {
	for _, tc := range []struct {
		name      string
		line      string
		want      string
		truncated bool
	}{
		{"escapes", `write(1<pipe:[5]>, "\"q\"\\ \1\0017\377\x41\t\r\n", 13) = 13`, "\"q\"\\ \x01\x017\xffA\t\r\n", false},
		{"writev joins its buffers", `writev(5<TCP:[127.0.0.1:2525->127.0.0.1:40001]>, [{iov_base="250 2.1.5 <a@x> Ok\r\n", iov_len=20}, {iov_base="250 b\r\n", iov_len=7}], 2) = 27`,
			"250 2.1.5 <a@x> Ok\r\n250 b\r\n", false},
		{"partial write", `write(5<TCP:[127.0.0.1:2525->127.0.0.1:40001]>, "250 a\r\n250 b\r\n", 14) = 7`, "250 a\r\n", false},
		{"refused write", `write(5<TCP:[127.0.0.1:2525->127.0.0.1:40001]>, "250 a\r\n", 7) = -1 EAGAIN (Resource temporarily unavailable)`, "", false},
		{"cut by -s", `write(5<TCP:[127.0.0.1:2525->127.0.0.1:40001]>, "250 a\r"..., 7) = 7`, "250 a\r", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			calls, err := parseStrace(strings.NewReader("7 1700000000.000001 " + tc.line + "\n"))
			if err != nil || len(calls) != 1 {
				t.Fatalf("%v, %d calls", err, len(calls))
			}
			b, truncated := calls[0].written()
			if string(b) != tc.want || truncated != tc.truncated {
				t.Errorf("written() = %q, %v; want %q, %v", b, truncated, tc.want, tc.truncated)
			}
		})
	}
}

// goodLog is a server's log of two connections. On the first (client
// port 40001) a message goes to a@x (file A in /s/a/post) and b-owner@x
// (file B in /s/b/owner), written concurrently; on the second (port
// 40002) a message goes to a+x@x (file C, also in /s/a/post). Thread 103
// runs one fsync of /s/a/post/new for A and C together (as a server that
// shares flushes would; the check allows it); B's
// folder gets its own. The replies to the first message come in one write.
const goodLog = `100 1700000000.000100 write(7<TCP:[127.0.0.1:2525->127.0.0.1:40001]>, "220 lg LMTP Service Ready\r\n", 27) = 27 <0.000010>
100 1700000000.000200 write(7<TCP:[127.0.0.1:2525->127.0.0.1:40001]>, "250-Hello t\r\n250 SIZE 100\r\n", 27) = 27 <0.000010>
104 1700000000.000210 write(12<TCP:[127.0.0.1:2525->127.0.0.1:40002]>, "220 lg LMTP Service Ready\r\n250-Hello u\r\n250 SIZE 100\r\n", 54) = 54 <0.000010>
100 1700000000.000300 write(7<TCP:[127.0.0.1:2525->127.0.0.1:40001]>, "250 2.0.0 Roger\r\n", 17) = 17 <0.000010>
100 1700000000.000400 write(7<TCP:[127.0.0.1:2525->127.0.0.1:40001]>, "250 2.0.0 a@x\r\n", 15) = 15 <0.000010>
100 1700000000.000500 write(7<TCP:[127.0.0.1:2525->127.0.0.1:40001]>, "250 2.0.0 b-owner@x\r\n", 21) = 21 <0.000010>
104 1700000000.000510 write(12<TCP:[127.0.0.1:2525->127.0.0.1:40002]>, "250 2.0.0 Roger\r\n", 17) = 17 <0.000010>
104 1700000000.000520 write(12<TCP:[127.0.0.1:2525->127.0.0.1:40002]>, "250 2.0.0 a+x@x\r\n", 17) = 17 <0.000010>
100 1700000000.000600 write(7<TCP:[127.0.0.1:2525->127.0.0.1:40001]>, "354 Go ahead\r\n", 14) = 14 <0.000010>
104 1700000000.000610 write(12<TCP:[127.0.0.1:2525->127.0.0.1:40002]>, "354 Go ahead\r\n", 14) = 14 <0.000010>
101 1700000000.001000 openat(AT_FDCWD</w>, "/s/a/post/tmp/A", O_WRONLY|O_CREAT|O_EXCL|O_CLOEXEC, 0640 <unfinished ...>
102 1700000000.001010 openat(AT_FDCWD</w>, "/s/b/owner/tmp/B", O_WRONLY|O_CREAT|O_EXCL|O_CLOEXEC, 0640 <unfinished ...>
101 1700000000.001100 <... openat resumed>) = 8</s/a/post/tmp/A> <0.000090>
102 1700000000.001110 <... openat resumed>) = 9</s/b/owner/tmp/B> <0.000090>
104 1700000000.001120 openat(AT_FDCWD</w>, "/s/a/post/tmp/C", O_WRONLY|O_CREAT|O_EXCL|O_CLOEXEC, 0640) = 13</s/a/post/tmp/C> <0.000010>
104 1700000000.001130 write(13</s/a/post/tmp/C>, "Delivered-To: a+x@x\n", 20) = 20 <0.000010>
104 1700000000.001140 fsync(13</s/a/post/tmp/C>) = 0 <0.000010>
101 1700000000.001200 write(8</s/a/post/tmp/A>, "Delivered-To: a@x\n", 18) = 18 <0.000010>
102 1700000000.001210 write(9</s/b/owner/tmp/B>, "Delivered-To: b-owner@x\n", 24 <unfinished ...>
101 1700000000.001300 fsync(8</s/a/post/tmp/A> <unfinished ...>
102 1700000000.001310 <... write resumed>) = 24 <0.000100>
102 1700000000.001400 fsync(9</s/b/owner/tmp/B> <unfinished ...>
101 1700000000.002000 <... fsync resumed>) = 0 <0.000700>
101 1700000000.002100 renameat(AT_FDCWD</w>, "/s/a/post/tmp/A", AT_FDCWD</w>, "/s/a/post/new/A") = 0 <0.000010>
104 1700000000.002150 rename("/s/a/post/tmp/C", "/s/a/post/new/C") = 0 <0.000010>
102 1700000000.002200 <... fsync resumed>) = 0 <0.000800>
102 1700000000.002300 renameat2(AT_FDCWD</w>, "/s/b/owner/tmp/B", AT_FDCWD</w>, "/s/b/owner/new/B", 0) = 0 <0.000010>
103 1700000000.002400 fsync(10</s/a/post/new> <unfinished ...>
102 1700000000.002500 fsync(11</s/b/owner/new>) = 0 <0.000300>
103 1700000000.003000 <... fsync resumed>) = 0 <0.000600>
104 1700000000.003050 write(12<TCP:[127.0.0.1:2525->127.0.0.1:40002]>, "250 2.1.5 <a+x@x> Ok\r\n", 22 <unfinished ...>
100 1700000000.003100 write(7<TCP:[127.0.0.1:2525->127.0.0.1:40001]>, "250 2.1.5 <a@x> Ok\r\n250 2.1.5 <b-owner@x> Ok\r\n", 46) = 46 <0.000010>
104 1700000000.003200 <... write resumed>) = 22 <0.000150>
100 1700000000.003300 write(7<TCP:[127.0.0.1:2525->127.0.0.1:40001]>, "221 Bye\r\n", 9) = 9 <0.000010>
`

// editLog applies edits to a log: each replaces one whole line, which must
// be there once, by zero or more lines (to delete, change or move lines).
func editLog(t *testing.T, log string, edits [][2]string) string {
	t.Helper()
	for _, e := range edits {
		if n := strings.Count(log, e[0]+"\n"); n != 1 {
			t.Fatalf("line %q is in the log %d times", e[0], n)
		}
		with := e[1]
		if with != "" {
			with += "\n"
		}
		log = strings.Replace(log, e[0]+"\n", with, 1)
	}
	return log
}

func TestCheckFsyncOrder(t *testing.T) {
	const (
		renameA   = `101 1700000000.002100 renameat(AT_FDCWD</w>, "/s/a/post/tmp/A", AT_FDCWD</w>, "/s/a/post/new/A") = 0 <0.000010>`
		renameC   = `104 1700000000.002150 rename("/s/a/post/tmp/C", "/s/a/post/new/C") = 0 <0.000010>`
		fsyncA    = `101 1700000000.001300 fsync(8</s/a/post/tmp/A> <unfinished ...>`
		fsyncAEnd = `101 1700000000.002000 <... fsync resumed>) = 0 <0.000700>`
		writeA    = `101 1700000000.001200 write(8</s/a/post/tmp/A>, "Delivered-To: a@x\n", 18) = 18 <0.000010>`
		dirA      = `103 1700000000.002400 fsync(10</s/a/post/new> <unfinished ...>`
		dirAEnd   = `103 1700000000.003000 <... fsync resumed>) = 0 <0.000600>`
		dirB      = `102 1700000000.002500 fsync(11</s/b/owner/new>) = 0 <0.000300>`
		reply1    = `100 1700000000.003100 write(7<TCP:[127.0.0.1:2525->127.0.0.1:40001]>, "250 2.1.5 <a@x> Ok\r\n250 2.1.5 <b-owner@x> Ok\r\n", 46) = 46 <0.000010>`
		reply2    = `104 1700000000.003050 write(12<TCP:[127.0.0.1:2525->127.0.0.1:40002]>, "250 2.1.5 <a+x@x> Ok\r\n", 22 <unfinished ...>`
	)
	conns := func() []lmtpConn {
		return []lmtpConn{
			{Port: 40001, Msgs: []lmtpMsg{{Rcpts: []string{"a@x", "b-owner@x"}, Codes: []int{250, 250}, Files: []string{"/s/a/post/new/A", "/s/b/owner/new/B"}}}},
			{Port: 40002, Msgs: []lmtpMsg{{Rcpts: []string{"a+x@x"}, Codes: []int{250}, Files: []string{"/s/a/post/new/C"}}}},
		}
	}
	newFiles := []string{"/s/a/post/new/A", "/s/b/owner/new/B", "/s/a/post/new/C"}
	for _, tc := range []struct {
		name  string
		edits [][2]string
		conns func([]lmtpConn)
		want  []string // a part of each problem, in order
	}{{
		name: "good",
	}, {
		name: "the new/ fsync started before the rename",
		// It still ends after it and before the 250: not enough.
		edits: [][2]string{{dirA, ""}, {renameA, `103 1700000000.002050 fsync(10</s/a/post/new> <unfinished ...>` + "\n" + renameA}},
		want: []string{
			"port 40001, message 0, <a@x>: no fsync of /s/a/post/new began after the rename of A (log line 25) and returned before the 250 was written (line 32)",
			"port 40002, message 0, <a+x@x>: no fsync of /s/a/post/new began after the rename of C (log line 26)",
		},
	}, {
		name:  "the 250 was written before the new/ fsync ended",
		edits: [][2]string{{reply1, ""}, {dirAEnd, reply1 + "\n" + dirAEnd}},
		want:  []string{"port 40001, message 0, <a@x>: no fsync of /s/a/post/new began after the rename of A (log line 24) and returned before the 250 was written (line 30)"},
	}, {
		name: "the same, seen only in the timestamps",
		edits: [][2]string{{reply1, `100 1700000000.002900 write(7<TCP:[127.0.0.1:2525->127.0.0.1:40001]>, "250 2.1.5 <a@x> Ok\r\n250 2.1.5 <b-owner@x> Ok\r\n", 46) = 46 <0.000010>`},
			{reply2, `104 1700000000.002900 write(12<TCP:[127.0.0.1:2525->127.0.0.1:40002]>, "250 2.1.5 <a+x@x> Ok\r\n", 22 <unfinished ...>`}},
		want: []string{"<a@x>: no fsync of /s/a/post/new", "<a+x@x>: no fsync of /s/a/post/new"},
	}, {
		name:  "only another folder's new/ flushed",
		edits: [][2]string{{dirA, `103 1700000000.002400 fsync(10</s/b/owner/new> <unfinished ...>`}},
		want:  []string{"<a@x>: no fsync of /s/a/post/new", "<a+x@x>: no fsync of /s/a/post/new"},
	}, {
		name:  "the new/ fsync failed",
		edits: [][2]string{{dirAEnd, `103 1700000000.003000 <... fsync resumed>) = -1 EIO (Input/output error) <0.000600>`}},
		want:  []string{"<a@x>: no fsync of /s/a/post/new", "<a+x@x>: no fsync of /s/a/post/new"},
	}, {
		name:  "renamed while its data fsync ran",
		edits: [][2]string{{renameA, ""}, {fsyncAEnd, renameA + "\n" + fsyncAEnd}},
		want:  []string{"/s/a/post/new/A: no fsync of fd 8 (/s/a/post/tmp/A, log line 11) between its last write (line 18) and its rename (line 23)"},
	}, {
		name:  "no data fsync",
		edits: [][2]string{{fsyncA, ""}, {fsyncAEnd, ""}},
		want:  []string{"/s/a/post/new/A: no fsync of fd 8"},
	}, {
		name:  "written after its data fsync",
		edits: [][2]string{{writeA, ""}, {fsyncAEnd, fsyncAEnd + "\n" + writeA}},
		want:  []string{"/s/a/post/new/A: no fsync of fd 8 (/s/a/post/tmp/A, log line 11) between its last write (line 23)"},
	}, {
		name:  "written under its new/ name",
		edits: [][2]string{{dirB, dirB + "\n" + `101 1700000000.002600 write(8</s/a/post/new/A>, "x", 1) = 1 <0.000010>`}},
		want:  []string{"/s/a/post/new/A: written to under its name in new/ (log line 30)"},
	}, {
		name:  "in new/ without a rename",
		edits: [][2]string{{renameC, ""}},
		want: []string{"/s/a/post/new/C: no rename into new/ in the log",
			"<a+x@x>: 250 (log line 30) but /s/a/post/new/C was never renamed into new/"},
	}, {
		name:  "a 250 without a file",
		conns: func(c []lmtpConn) { c[0].Msgs[0].Files[1] = "" },
		want:  []string{"connection from port 40001, message 0, <b-owner@x>: 250 (log line 32) but no file in new/"},
	}, {
		name:  "the client read another reply",
		conns: func(c []lmtpConn) { c[1].Msgs[0].Codes[0] = 451 },
		want:  []string{"connection from port 40002, message 0, <a+x@x>: the log has reply 250 (line 31), the client read 451"},
	}, {
		name:  "a reply missing from the log",
		edits: [][2]string{{reply1, `100 1700000000.003100 write(7<TCP:[127.0.0.1:2525->127.0.0.1:40001]>, "250 2.1.5 <a@x> Ok\r\n", 20) = 20 <0.000010>`}},
		want:  []string{"connection from port 40001, message 0, <b-owner@x>: the log has reply 221 (line 34), the client read 250"},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			calls, err := parseStrace(strings.NewReader(editLog(t, goodLog, tc.edits)))
			if err != nil {
				t.Fatal(err)
			}
			c := conns()
			if tc.conns != nil {
				tc.conns(c)
			}
			rep, problems := checkFsyncOrder(calls, 2525, c, newFiles)
			if len(problems) != len(tc.want) {
				t.Fatalf("problems:\n%s\nwant %d", strings.Join(problems, "\n"), len(tc.want))
			}
			for i, p := range problems {
				if !strings.Contains(p, tc.want[i]) {
					t.Errorf("problem %q, want one with %q", p, tc.want[i])
				}
			}
			if tc.want == nil {
				want := orderReport{Files: 3, Acks: 3, DirFsyncs: 2, MinGap: 50}
				if rep != want {
					t.Errorf("report %+v, want %+v", rep, want)
				}
			}
		})
	}
}

// FuzzParseStrace: any log either fails to parse or gives calls in the
// order they started, each ending no earlier than it started.
func FuzzParseStrace(f *testing.F) {
	f.Add(goodLog)
	f.Add("7 1700000000.1 read(3</x>,  <unfinished ...>\n8 1700000000.2 --- SIGURG {si_signo=SIGURG} ---\n7 1700000000.3 <... read resumed>\"ab\", 10) = 2 <0.2>\n")
	f.Add(`7 1.5 writev(5<TCP:[::1]:25->[::1]:4>, [{iov_base="\1\"\\", iov_len=3}], 1) = 3` + "\n")
	f.Fuzz(func(t *testing.T, log string) {
		calls, err := parseStrace(strings.NewReader(log))
		if err != nil {
			return
		}
		for i, c := range calls {
			if c.StartLine > c.EndLine || c.Name == "" || i > 0 && calls[i-1].StartLine > c.StartLine {
				t.Fatalf("call %d: %+v", i, c)
			}
			c.written()
			c.fdPath(0)
			c.pathArg(0, 1)
		}
		checkFsyncOrder(calls, 25, []lmtpConn{{Port: 4, Msgs: []lmtpMsg{{Rcpts: []string{"a"}, Codes: []int{250}, Files: []string{"/s/new/A"}}}}}, []string{"/s/new/A"})
	})
}
