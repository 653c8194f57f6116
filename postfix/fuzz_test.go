package postfix

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
)

// FuzzPolicyRequest feeds the policy request parser arbitrary input
// (seeds in testdata/fuzz/FuzzPolicyRequest). Whatever it reads, it must
// not panic, must never take more than the request limit, and a request
// it accepts must be well-formed: request=smtpd_access_policy and a
// protocol_state, each attribute as it appears first in the input; after
// a request it accepted or found malformed, the next one parses from the
// byte after its empty line.
func FuzzPolicyRequest(f *testing.F) {
	const maxLine, maxReq = 64, 512
	f.Fuzz(func(t *testing.T, in []byte) {
		r := &countingReader{r: bytes.NewReader(in)}
		br := bufio.NewReaderSize(r, maxLine)
		for range 100 {
			before := r.n - br.Buffered()
			req, err := readRequest(br, maxLine, maxReq)
			used := r.n - br.Buffered() - before
			var mal *malformedError
			switch {
			case err == nil:
				if req.kind != requestValue || !req.hasState {
					t.Fatalf("accepted a request without request= or protocol_state: %+v", req)
				}
				for _, a := range []struct {
					name, value string
					has         bool
				}{{attrRcpt, req.rcpt, req.hasRcpt}, {attrState, req.state, true}, {attrSize, req.size, req.hasSize}} {
					if a.has && !strings.Contains(string(in), a.name+"="+a.value) {
						t.Fatalf("attribute %s=%q is not in the input", a.name, a.value)
					}
				}
			case errors.As(err, &mal):
			case errors.Is(err, errTooBig), errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
				if used > maxReq+maxLine {
					t.Fatalf("read %d bytes for a request over the %d limit", used, maxReq)
				}
				return
			default:
				t.Fatalf("unexpected error %v", err)
			}
			if used > maxReq {
				t.Fatalf("took a request of %d bytes, limit %d", used, maxReq)
			}
		}
	})
}

// countingReader counts the bytes read from r.
type countingReader struct {
	r io.Reader
	n int
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += n
	return n, err
}

// FuzzNetstring feeds the netstring reader arbitrary input (seeds in
// testdata/fuzz/FuzzNetstring). It must not panic; a payload it returns
// is at most the limit, and framing it again gives back exactly the bytes
// it read (so nothing is lost or invented between requests).
func FuzzNetstring(f *testing.F) {
	const max = 1000
	f.Fuzz(func(t *testing.T, in []byte) {
		br := bufio.NewReader(bytes.NewReader(in))
		off := 0
		for range 100 {
			payload, err := readNetstring(br, max)
			if err != nil {
				if !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, errNetstring) {
					t.Fatalf("unexpected error %v", err)
				}
				return
			}
			if len(payload) > max {
				t.Fatalf("payload of %d bytes over the limit %d", len(payload), max)
			}
			frame := appendNetstring(nil, string(payload))
			rest := in[off:]
			// The input may write the length with leading zeros.
			colon := bytes.IndexByte(rest, ':')
			got := append(bytes.TrimLeft(rest[:colon], "0"), rest[colon:colon+1+len(payload)+1]...)
			if len(got) > 0 && got[0] == ':' {
				got = append([]byte("0"), got...)
			}
			if !bytes.Equal(got, frame) {
				t.Fatalf("read %q from %q, which frames as %q", payload, rest[:colon+len(payload)+2], frame)
			}
			off += colon + 1 + len(payload) + 1
		}
	})
}
