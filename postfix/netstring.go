package postfix

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"strconv"
)

// A netstring is "<length>:<bytes>," with the length in decimal ASCII
// digits (D. J. Bernstein's netstrings; Postfix's netstring.c), the
// framing of every socketmap request and reply (socketmap_table(5)).

// errNetstring is a framing error: the stream cannot be read further.
var errNetstring = errors.New("malformed netstring")

// readNetstring reads one netstring from r and returns its payload, at most
// max bytes. It returns io.EOF when r ends before the first byte; an error
// wrapping io.ErrUnexpectedEOF when it ends within the netstring;
// errNetstring (wrapped, with the reason) for a length that is not
// digits, a payload longer than max (not read), or a missing ','.
// Like Postfix's netstring_get_length, it takes leading zeros; unlike it,
// it takes no more digits than max needs, so a stream of digits cannot
// keep it reading.
func readNetstring(r *bufio.Reader, max int) ([]byte, error) {
	maxDigits := len(strconv.Itoa(max))
	n, digits := 0, 0
	for {
		b, err := r.ReadByte()
		if err != nil {
			if errors.Is(err, io.EOF) {
				if digits == 0 {
					return nil, io.EOF
				}
				err = io.ErrUnexpectedEOF
			}
			return nil, fmt.Errorf("reading a netstring's length: %w", err)
		}
		if b == ':' && digits > 0 {
			break
		}
		if b < '0' || b > '9' {
			return nil, fmt.Errorf("%w: byte %q in its length", errNetstring, b)
		}
		if digits++; digits > maxDigits {
			return nil, fmt.Errorf("%w: length longer than %d digits", errNetstring, maxDigits)
		}
		n = n*10 + int(b-'0')
	}
	if n > max {
		return nil, fmt.Errorf("%w: length %d over the limit of %d bytes", errNetstring, n, max)
	}
	buf := make([]byte, n+1)
	if _, err := io.ReadFull(r, buf); err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return nil, fmt.Errorf("reading a netstring of %d bytes: %w", n, err)
	}
	if buf[n] != ',' {
		return nil, fmt.Errorf("%w: %q after %d bytes, want ','", errNetstring, buf[n], n)
	}
	return buf[:n], nil
}

// appendNetstring appends s to b as a netstring.
func appendNetstring(b []byte, s string) []byte {
	b = strconv.AppendInt(b, int64(len(s)), 10)
	b = append(b, ':')
	b = append(b, s...)
	return append(b, ',')
}
