// Package mailmanfake is a stand-in for GNU Mailman 3 core's REST API,
// version 3.1, for tests that need Mailman's lists without Mailman: the
// resources listgate reads (GET /3.1/lists, /3.1/lists/ID, /3.1/domains,
// /3.1/system/configuration/mta), with the JSON Mailman 3.3 writes
// (src/mailman/rest/lists.py, domains.py, root.py, helpers.py: every
// field, http_etag, "entries" left out of an empty page), its paging
// (?count=N&page=P) and its HTTP Basic authentication (401 with
// Mailman's realm). Tests against a real Mailman use internal/mailmantest.
package mailmanfake

import (
	"crypto/rand"
	"crypto/sha1"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// User is the REST user name the fake wants, as Mailman's default
// [webservice] admin_user.
const User = "restadmin"

// Server is a fake Mailman core. Its methods are safe for concurrent use.
type Server struct {
	srv      *httptest.Server
	password string

	mu       sync.Mutex
	lists    map[string]string // fqdn_listname → description
	domains  map[string]string // mail_host → alias_domain ("" for null)
	mta      map[string]string
	down     bool
	hook     func(*http.Request)
	requests map[string]int // by path
}

// New starts a fake Mailman on 127.0.0.1 with no domain and no list, and
// Mailman's default [mta] settings; it stops when the test ends. Its
// password is random and distinctive ("restpass-" and hex), for tests
// that look for it where it must not be.
func New(t testing.TB) *Server {
	b := make([]byte, 8)
	rand.Read(b)
	s := &Server{
		password: "restpass-" + hex.EncodeToString(b),
		lists:    make(map[string]string),
		domains:  make(map[string]string),
		requests: make(map[string]int),
		mta: map[string]string{
			"incoming": "mailman.mta.postfix.LMTP", "outgoing": "mailman.mta.deliver.deliver",
			"smtp_host": "localhost", "smtp_port": "25", "lmtp_host": "127.0.0.1", "lmtp_port": "8024",
			"max_recipients": "10", "verp_delimiter": "+", "verp_format": "${bounces}+${local}=${domain}",
			"verp_confirm_format": "$address+$cookie", "verp_confirmations": "yes",
			"configuration": "python:mailman.config.postfix",
		},
	}
	s.srv = httptest.NewServer(http.HandlerFunc(s.serve))
	t.Cleanup(s.srv.Close)
	return s
}

// URL is the REST base with the credentials in it:
// http://restadmin:PASSWORD@127.0.0.1:PORT/3.1.
func (s *Server) URL() string {
	u, _ := url.Parse(s.Base())
	u.User = url.UserPassword(User, s.password)
	return u.String()
}

// Base is the REST base without credentials: http://127.0.0.1:PORT/3.1.
func (s *Server) Base() string { return s.srv.URL + "/3.1" }

// Password is the password the fake wants.
func (s *Server) Password() string { return s.password }

// CreateList creates the list fqdn (local@domain), and its domain if
// missing, as `mailman create` does.
func (s *Server) CreateList(fqdn string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	fqdn = strings.ToLower(fqdn)
	s.lists[fqdn] = ""
	_, host, _ := strings.Cut(fqdn, "@")
	if _, ok := s.domains[host]; !ok {
		s.domains[host] = ""
	}
}

// RemoveList removes the list fqdn, as `mailman remove` does.
func (s *Server) RemoveList(fqdn string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.lists, strings.ToLower(fqdn))
}

// CreateDomain creates (or changes) a domain with an alias domain ("" for
// none).
func (s *Server) CreateDomain(mailHost, aliasDomain string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.domains[mailHost] = aliasDomain
}

// SetMTA sets a key of the [mta] section ("lmtp_port", "8026").
func (s *Server) SetMTA(key, value string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.mta[key] = value
}

// SetDown makes the fake drop every connection without an answer (down
// true), as a stopped Mailman's port would, or answer again.
func (s *Server) SetDown(down bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.down = down
}

// SetHook makes f run before each request is answered (nil: none), outside
// the fake's lock: a test may change the lists between two pages.
func (s *Server) SetHook(f func(*http.Request)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.hook = f
}

// Requests returns how many requests for path ("/3.1/lists") the fake
// has had, answered or refused.
func (s *Server) Requests(path string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.requests[path]
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	s.requests[r.URL.Path]++
	down, hook := s.down, s.hook
	s.mu.Unlock()
	if down {
		if c, _, err := http.NewResponseController(w).Hijack(); err == nil {
			c.Close()
		}
		return
	}
	if hook != nil {
		hook(r)
	}
	if user, pass, ok := r.BasicAuth(); !ok || user != User || pass != s.password {
		w.Header().Set("WWW-Authenticate", `Basic realm="mailman3-rest",charset="utf-8"`)
		writeJSON(w, http.StatusUnauthorized, map[string]any{"title": "401 Unauthorized", "description": "REST API authorization failed"})
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	path := strings.TrimPrefix(r.URL.Path, "/3.1")
	switch {
	case r.Method != http.MethodGet:
		writeJSON(w, http.StatusMethodNotAllowed, map[string]any{"title": "405 Method Not Allowed"})
	case path == "/lists":
		s.collection(w, r, s.listEntries())
	case strings.HasPrefix(path, "/lists/"):
		id := strings.TrimPrefix(path, "/lists/")
		for _, e := range s.listEntries() {
			if e["list_id"] == id || e["fqdn_listname"] == id {
				writeJSON(w, http.StatusOK, etag(e))
				return
			}
		}
		notFound(w)
	case path == "/domains":
		s.collection(w, r, s.domainEntries())
	case path == "/system/configuration/mta":
		res := map[string]any{"self_link": s.Base() + "/system/configuration/mta"}
		for k, v := range s.mta {
			res[k] = v
		}
		writeJSON(w, http.StatusOK, etag(res))
	default:
		notFound(w)
	}
}

// listEntries are the lists as _ListBase._resource_as_dict writes them,
// ordered by list_id as IListManager.find orders them.
func (s *Server) listEntries() []map[string]any {
	var es []map[string]any
	for fqdn, desc := range s.lists {
		name, host, _ := strings.Cut(fqdn, "@")
		id := name + "." + host
		es = append(es, map[string]any{
			"advertised": true, "display_name": strings.ToUpper(name[:1]) + name[1:], "fqdn_listname": fqdn,
			"list_id": id, "list_name": name, "mail_host": host, "member_count": 0, "volume": 1,
			"description": desc, "self_link": s.Base() + "/lists/" + id,
		})
	}
	slices.SortFunc(es, func(a, b map[string]any) int { return strings.Compare(a["list_id"].(string), b["list_id"].(string)) })
	return es
}

// domainEntries are the domains as _DomainBase._resource_as_dict writes
// them: alias_domain and description are null when unset.
func (s *Server) domainEntries() []map[string]any {
	var es []map[string]any
	for host, alias := range s.domains {
		e := map[string]any{"alias_domain": nil, "description": nil, "mail_host": host, "self_link": s.Base() + "/domains/" + host}
		if alias != "" {
			e["alias_domain"] = alias
		}
		es = append(es, e)
	}
	slices.SortFunc(es, func(a, b map[string]any) int {
		return strings.Compare(a["mail_host"].(string), b["mail_host"].(string))
	})
	return es
}

// collection answers as CollectionMixin._make_collection does: all
// entries without count and page, else entries (page-1)*count up to
// page*count-1; "entries" only when there are some.
func (s *Server) collection(w http.ResponseWriter, r *http.Request, es []map[string]any) {
	q := r.URL.Query()
	start, total := 0, len(es)
	if q.Has("count") || q.Has("page") {
		count, err1 := strconv.Atoi(q.Get("count"))
		page, err2 := strconv.Atoi(q.Get("page"))
		if err1 != nil || err2 != nil || count < 0 || page < 1 {
			writeJSON(w, http.StatusBadRequest, map[string]any{"title": "400 Bad Request", "description": "Invalid parameter"})
			return
		}
		start = (page - 1) * count
		es = es[min(start, total):min(page*count, total)]
	}
	res := map[string]any{"start": start, "total_size": total}
	if len(es) > 0 {
		for _, e := range es {
			etag(e)
		}
		res["entries"] = es
	}
	writeJSON(w, http.StatusOK, etag(res))
}

// etag adds http_etag: a quoted SHA-1 of the resource, as etag() does
// (of its pformat; any stable text will do here).
func etag(res map[string]any) map[string]any {
	b, _ := json.Marshal(res)
	res["http_etag"] = fmt.Sprintf(`"%x"`, sha1.Sum(b))
	return res
}

func notFound(w http.ResponseWriter) {
	writeJSON(w, http.StatusNotFound, map[string]any{"title": "404 Not Found", "description": "404 Not Found"})
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=UTF-8")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(v)
}
