package mailman_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/listgate/listgate/mailman"
)

// TestReadCredentials: one line user:password from a file no other user
// can read; errors name the file, never what it holds.
func TestReadCredentials(t *testing.T) {
	dir := t.TempDir()
	for _, tt := range []struct {
		name, content string
		mode          os.FileMode
		want, err     string
	}{
		{"plain", "restadmin:s3cret-pass\n", 0o600, "restadmin:s3cret-pass", ""},
		{"group", "  restadmin:s3cret:pass  \r\nignored\n", 0o640, "restadmin:s3cret:pass", ""},
		{"world-readable", "restadmin:s3cret-pass\n", 0o644, "", "every user can read it (mode 0644): chmod o-r"},
		{"no colon", "s3cret-pass\n", 0o600, "", "want one line user:password"},
		{"no user", ":s3cret-pass\n", 0o600, "", "empty user name"},
		{"no password", "restadmin:\n", 0o600, "", "empty password"},
		{"empty", "", 0o600, "", "want one line user:password"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(dir, tt.name)
			if err := os.WriteFile(path, []byte(tt.content), tt.mode); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(path, tt.mode); err != nil { // past the umask
				t.Fatal(err)
			}
			got, err := mailman.ReadCredentials(path)
			if tt.err == "" {
				if err != nil || got != tt.want {
					t.Errorf("got %q, %v; want %q", got, err, tt.want)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.err) || !strings.Contains(err.Error(), path) {
				t.Fatalf("error %v, want %q naming %s", err, tt.err, path)
			}
			if strings.Contains(err.Error(), "s3cret") {
				t.Errorf("the error shows the password: %v", err)
			}
		})
	}
	if _, err := mailman.ReadCredentials(filepath.Join(dir, "missing")); err == nil {
		t.Error("a missing file gave credentials")
	}
}
