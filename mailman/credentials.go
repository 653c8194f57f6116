package mailman

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
)

// ReadCredentials reads a credentials file: one line "user:password",
// Mailman's [webservice] admin_user and admin_pass (a final newline and
// surrounding blanks are dropped). A file every user may read is refused,
// as ssh refuses such a key: make it mode 0600 or 0640, owned by the user
// or group listgate runs as. Errors name the file, never its content.
func ReadCredentials(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return "", err
	}
	if mode := fi.Mode(); !mode.IsRegular() {
		return "", fmt.Errorf("%s: not a regular file", path)
	} else if mode.Perm()&0o004 != 0 {
		return "", fmt.Errorf("%s: every user can read it (mode %04o): chmod o-r %s", path, mode.Perm(), path)
	}
	b, err := io.ReadAll(io.LimitReader(f, 4096))
	if err != nil {
		return "", fmt.Errorf("%s: %w", path, err)
	}
	line, _, _ := bufio.NewReader(bytes.NewReader(b)).ReadLine()
	cred := strings.TrimSpace(string(line))
	user, pass, ok := strings.Cut(cred, ":")
	switch {
	case !ok:
		return "", fmt.Errorf("%s: want one line user:password", path)
	case user == "":
		return "", fmt.Errorf("%s: empty user name before ':'", path)
	case pass == "":
		return "", errors.New(path + ": empty password after ':'")
	}
	return cred, nil
}
