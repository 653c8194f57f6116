package daemon

import (
	"net"
	"strings"
	"testing"

	"github.com/listgate/listgate/postconf"
)

// TestListenInUse: a port another program holds is an error that names
// the setting, the address and how to find the other program.
func TestListenInUse(t *testing.T) {
	other, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	addr := other.Addr().String()
	_, port, _ := net.SplitHostPort(addr)
	l, err := listen("--lmtp", postconf.Endpoint{Network: "tcp", Address: addr})
	if err == nil {
		l.Close()
		t.Fatalf("listen on %s, which is taken: no error", addr)
	}
	for _, want := range []string{"--lmtp inet:" + addr, "address already in use", "another program listens on port " + port, "sport = :" + port} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
	if strings.Contains(err.Error(), "Mailman") {
		t.Errorf("error %q names Mailman for a port that is not 8024", err)
	}
}

func TestInUseHint(t *testing.T) {
	for _, tc := range []struct {
		e    postconf.Endpoint
		want string // "" : no hint
	}{
		{postconf.Endpoint{Network: "tcp", Address: "127.0.0.1:8024"}, "Mailman 3's LMTP runner listens on 8024"},
		{postconf.Endpoint{Network: "tcp", Address: "[::1]:8024"}, "Mailman 3's LMTP runner listens on 8024"},
		{postconf.Endpoint{Network: "tcp", Address: "127.0.0.1:8025"}, "`ss -ltnp sport = :8025` names it)"},
		{postconf.Endpoint{Network: "unix", Address: "/run/listgate/lmtp"}, ""},
	} {
		got := inUseHint(tc.e)
		if tc.want == "" && got != "" || !strings.Contains(got, tc.want) {
			t.Errorf("inUseHint(%v) = %q, want it to contain %q", tc.e, got, tc.want)
		}
		if tc.e.Address == "127.0.0.1:8025" && strings.Contains(got, "Mailman") {
			t.Errorf("inUseHint(%v) = %q names Mailman", tc.e, got)
		}
	}
}
