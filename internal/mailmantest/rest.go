package mailmantest

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

// List is a mailing list as Mailman's REST API shows it (GET /3.1/lists).
type List struct {
	FQDNListname string `json:"fqdn_listname"` // announce@example.org
	ListID       string `json:"list_id"`       // announce.example.org
	ListName     string `json:"list_name"`     // announce
	MailHost     string `json:"mail_host"`     // example.org
}

// Domain is a mail domain as Mailman's REST API shows it (GET /3.1/domains).
type Domain struct {
	MailHost    string `json:"mail_host"`
	AliasDomain string `json:"alias_domain"` // "" when null
}

// MTA is part of Mailman's [mta] configuration as its REST API shows it
// (GET /3.1/system/configuration/mta); every value is a string there.
type MTA struct {
	Incoming       string `json:"incoming"`
	LMTPHost       string `json:"lmtp_host"`
	LMTPPort       string `json:"lmtp_port"`
	VERPDelimiter  string `json:"verp_delimiter"`
	VERPFormat     string `json:"verp_format"`
	VERPConfirmFmt string `json:"verp_confirm_format"`
}

// Get requests path ("/3.1/lists") from the REST API and decodes its JSON
// answer into v. It fails the test unless the answer is 200 OK.
func (m *Mailman) Get(t testing.TB, path string, v any) {
	t.Helper()
	status, body, err := m.request(http.MethodGet, path, nil)
	if err == nil && status != http.StatusOK {
		err = fmt.Errorf("status %d: %s", status, body)
	}
	if err == nil {
		if err = json.Unmarshal(body, v); err != nil {
			err = fmt.Errorf("decode %q: %w", body, err)
		}
	}
	if err != nil {
		t.Fatalf("mailmantest: GET %s from %s: %v", path, m.RESTAddr, err)
	}
}

// Post posts form to path on the REST API, as Postorius does, and fails the
// test unless the answer is 2xx.
func (m *Mailman) Post(t testing.TB, path string, form url.Values) {
	t.Helper()
	if err := m.PostForm(path, form); err != nil {
		t.Fatal(err)
	}
}

// PostForm is Post for a program that is not a test: it returns an error
// unless the answer is 2xx.
func (m *Mailman) PostForm(path string, form url.Values) error {
	status, body, err := m.request(http.MethodPost, path, form)
	if err == nil && status/100 != 2 {
		err = fmt.Errorf("status %d: %s", status, body)
	}
	if err != nil {
		return fmt.Errorf("mailmantest: POST %s %s to %s: %w", path, form.Encode(), m.RESTAddr, err)
	}
	return nil
}

// Lists returns every list Mailman knows, in its order.
func (m *Mailman) Lists(t testing.TB) []List {
	t.Helper()
	var page struct {
		Entries []List `json:"entries"`
	}
	m.Get(t, "/3.1/lists", &page)
	return page.Entries
}

// Domains returns every mail domain Mailman knows, in its order.
func (m *Mailman) Domains(t testing.TB) []Domain {
	t.Helper()
	var page struct {
		Entries []Domain `json:"entries"`
	}
	m.Get(t, "/3.1/domains", &page)
	return page.Entries
}

// CreateDomain creates the mail domain mailHost with REST (POST
// /3.1/domains), with aliasDomain as its alias_domain unless "": "mailman
// create" creates a missing domain, but cannot give it an alias domain.
func (m *Mailman) CreateDomain(t testing.TB, mailHost, aliasDomain string) {
	t.Helper()
	form := url.Values{"mail_host": {mailHost}}
	if aliasDomain != "" {
		form.Set("alias_domain", aliasDomain)
	}
	m.Post(t, "/3.1/domains", form)
}

// MTAConfig returns Mailman's [mta] configuration from REST.
func (m *Mailman) MTAConfig(t testing.TB) MTA {
	t.Helper()
	var mta MTA
	m.Get(t, "/3.1/system/configuration/mta", &mta)
	return mta
}

func (m *Mailman) request(method, path string, form url.Values) (int, []byte, error) {
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, "http://"+m.RESTAddr+path, body)
	if err != nil {
		return 0, nil, err
	}
	req.SetBasicAuth(m.RESTUser, m.RESTPassword)
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	c := http.Client{Timeout: 30 * time.Second}
	resp, err := c.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, b, err
}

// restAnswers reports whether this instance's REST API answers: GET
// /3.1/system/versions with its credentials, and Mailman's name in the
// answer (another process may listen on a port picked as free).
func (m *Mailman) restAnswers() bool {
	status, body, err := m.request(http.MethodGet, "/3.1/system/versions", nil)
	return err == nil && status == http.StatusOK && strings.Contains(string(body), `"GNU Mailman `)
}
