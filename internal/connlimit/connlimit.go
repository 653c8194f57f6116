// Package connlimit caps the connections a door holds open: in all, and
// per client address. Every door (lmtp, milter, and the policy and
// socketmap doors of package postfix) takes one on Accept and gives it
// back when the connection closes, so a client that opens connections
// and holds them (slowly, or not at all) cannot use up the process's file
// descriptors and starve Postfix's own connections.
package connlimit

import (
	"net"
	"sync"
)

// Reasons a connection is refused, as the "reason" label of the doors'
// listgate_<door>_connections_refused_total metrics spells them.
const (
	// ReasonMax: the door already holds its maximum of connections.
	ReasonMax = "max_connections"
	// ReasonPerClient: the client's address already holds its maximum.
	ReasonPerClient = "max_connections_per_client"
)

// Reasons lists every reason, for metrics that set up each series.
func Reasons() []string { return []string{ReasonMax, ReasonPerClient} }

// Limiter counts a door's open connections. Its zero value has no limits;
// New gives it some. It is safe for concurrent use.
type Limiter struct {
	max, perClient int

	mu       sync.Mutex
	open     int
	byClient map[string]int
}

// New returns a Limiter that allows max connections in all and perClient
// from one client address (see Client). Zero or less means no limit.
func New(max, perClient int) *Limiter {
	return &Limiter{max: max, perClient: perClient, byClient: make(map[string]int)}
}

// Acquire counts a new connection from addr. If a limit would be passed
// it returns "" and the reason (ReasonMax, ReasonPerClient) and counts
// nothing; otherwise a release function, safe to call more than once,
// that gives the connection back.
func (l *Limiter) Acquire(addr net.Addr) (release func(), reason string) {
	client := Client(addr)
	l.mu.Lock()
	defer l.mu.Unlock()
	switch {
	case l.max > 0 && l.open >= l.max:
		return nil, ReasonMax
	case client != "" && l.perClient > 0 && l.byClient[client] >= l.perClient:
		return nil, ReasonPerClient
	}
	l.open++
	if client != "" {
		if l.byClient == nil {
			l.byClient = make(map[string]int)
		}
		l.byClient[client]++
	}
	var once sync.Once
	return func() {
		once.Do(func() {
			l.mu.Lock()
			defer l.mu.Unlock()
			l.open--
			if client != "" {
				if l.byClient[client]--; l.byClient[client] <= 0 {
					delete(l.byClient, client)
				}
			}
		})
	}, ""
}

// Open returns the number of connections counted now.
func (l *Limiter) Open() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.open
}

// Client returns the client key of a peer address: the IP address of a
// TCP peer (its port dropped, so each connection of one host counts
// alike), "" for any other peer. A unix socket's peers are local
// processes that the socket's file mode lets in, all unnamed: they count
// towards the door's maximum only.
func Client(addr net.Addr) string {
	if a, ok := addr.(*net.TCPAddr); ok && a != nil {
		return a.IP.String()
	}
	return ""
}
