package mailman

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
)

// The JSON of Mailman core's REST API, version 3.1, as Mailman 3.3
// writes it (src/mailman/rest/helpers.py, lists.py, domains.py,
// root.py). Fields listgate does not use are not decoded; unknown fields
// are ignored, since Mailman adds fields between versions.

// collection is a collection resource: GET /lists, GET /domains. Mailman
// leaves entries out when the page is empty. With ?count=N&page=P it
// holds entries (P-1)*N up to P*N-1 of total_size; start is the first's
// index.
type collection[T any] struct {
	Start     int `json:"start"`
	TotalSize int `json:"total_size"`
	Entries   []T `json:"entries"`
}

// restList is an entry of GET /lists (_ListBase._resource_as_dict).
type restList struct {
	FQDNListname text `json:"fqdn_listname"`
	ListID       text `json:"list_id"`
	ListName     text `json:"list_name"`
	MailHost     text `json:"mail_host"`
	Description  text `json:"description"`
}

// restDomain is an entry of GET /domains (_DomainBase._resource_as_dict).
// alias_domain is null unless the admin set one.
type restDomain struct {
	MailHost    text `json:"mail_host"`
	AliasDomain text `json:"alias_domain"`
}

// restMTA is GET /system/configuration/mta: the [mta] section of
// mailman.cfg, every value a string (lazr.config's).
type restMTA struct {
	LMTPHost      text `json:"lmtp_host"`
	LMTPPort      text `json:"lmtp_port"`
	VERPDelimiter text `json:"verp_delimiter"`
}

// text is a JSON string that also takes null (as "") and a number (as
// its decimal form): Mailman writes configuration values as strings, but
// a proxy or a later version could write a port as a number.
type text string

func (t *text) UnmarshalJSON(b []byte) error {
	switch {
	case bytes.Equal(b, []byte("null")):
		*t = ""
		return nil
	case len(b) > 0 && b[0] == '"':
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		*t = text(s)
		return nil
	}
	var n json.Number
	if err := json.Unmarshal(b, &n); err != nil {
		return fmt.Errorf("want a string, got %s", b)
	}
	*t = text(n)
	return nil
}

// List is one Mailman list as listgate keeps it (and caches it).
type List struct {
	Address     string `json:"address"` // fqdn_listname
	ListID      string `json:"list_id"`
	Description string `json:"description,omitempty"`
}

// Domain is one Mailman domain as listgate keeps it.
type Domain struct {
	Name        string `json:"mail_host"`
	AliasDomain string `json:"alias_domain,omitempty"`
}

// MTA is what listgate reads of Mailman's [mta] section.
type MTA struct {
	LMTPHost      string `json:"lmtp_host"`
	LMTPPort      string `json:"lmtp_port"`
	VERPDelimiter string `json:"verp_delimiter"`
}

// Data is one consistent read of Mailman: every list (sorted by list_id),
// every domain (sorted by name) and the [mta] settings listgate uses.
type Data struct {
	Lists   []List   `json:"lists"`
	Domains []Domain `json:"domains"`
	MTA     MTA      `json:"mta"`
}

// Equal reports whether d and o hold the same lists, domains and MTA
// settings.
func (d *Data) Equal(o *Data) bool {
	return d != nil && o != nil && slices.Equal(d.Lists, o.Lists) && slices.Equal(d.Domains, o.Domains) && d.MTA == o.MTA
}

// list turns a REST entry into a List. An entry without fqdn_listname
// is named by list_name@mail_host, as Mailman builds it.
func (r restList) list() List {
	addr := string(r.FQDNListname)
	if addr == "" && r.ListName != "" && r.MailHost != "" {
		addr = string(r.ListName) + "@" + string(r.MailHost)
	}
	return List{Address: addr, ListID: string(r.ListID), Description: string(r.Description)}
}

// maxEntries bounds a collection: a site with more lists than this is
// not one listgate was tried with, and a bogus total_size must not make
// it read pages forever.
const maxEntries = 1_000_000

// maxBody bounds one REST response: a page of 500 lists is some 200 KiB.
const maxBody = 64 << 20

// errInconsistent says that the pages of a collection did not fit
// together: a list was created or removed while they were read.
var errInconsistent = errors.New("the collection changed while it was read")

// statusError is an answer other than 200 OK.
type statusError struct {
	url, status string
	code        int
	hint        string // what to do about it, if known
}

// ErrUnauthorized is in the chain of an error when Mailman's REST API
// refused the credentials (401): a wrong admin_user or admin_pass, which
// no retry mends.
var ErrUnauthorized = errors.New("mailman: credentials refused")

// Unwrap makes a 401 match ErrUnauthorized with errors.Is.
func (e *statusError) Unwrap() error {
	if e.code == http.StatusUnauthorized {
		return ErrUnauthorized
	}
	return nil
}

func (e *statusError) Error() string {
	if e.hint != "" {
		return fmt.Sprintf("GET %s: %s: %s", e.url, e.status, e.hint)
	}
	return fmt.Sprintf("GET %s: %s", e.url, e.status)
}

// compareLists orders lists by list_id, as Mailman's collection does.
func compareLists(a, b List) int {
	return cmp.Or(cmp.Compare(a.ListID, b.ListID), cmp.Compare(a.Address, b.Address))
}

// client reads Mailman's REST API. base has no user information: the
// credentials go in the Authorization header alone, so no URL in an
// error or a log line can hold them.
type client struct {
	base       *url.URL
	user, pass string
	http       *http.Client
	pageSize   int
}

// get fetches path (relative to base, with its query) and decodes the
// JSON body into v. It fails unless Mailman answers 200.
func (c *client) get(ctx context.Context, path string, v any) error {
	u := c.base.String() + path
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", "listgate")
	if c.user != "" || c.pass != "" {
		req.SetBasicAuth(c.user, c.pass)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return err // a *url.Error naming u, which holds no credentials
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxBody+1))
	switch {
	case err != nil:
		return fmt.Errorf("GET %s: %w", u, err)
	case resp.StatusCode != http.StatusOK:
		e := &statusError{url: u, status: resp.Status, code: resp.StatusCode}
		switch {
		case resp.StatusCode == http.StatusUnauthorized:
			e.hint = "Mailman refused the credentials (its [webservice] admin_user and admin_pass; give them in mailman_credentials_file or the URL)"
		case resp.StatusCode == http.StatusNotFound && strings.HasPrefix(path, "/lists?"):
			e.hint = fmt.Sprintf("is %s Mailman core's REST API with its version, e.g. http://127.0.0.1:8001/3.1?", c.base)
		}
		return e
	case len(body) > maxBody:
		return fmt.Errorf("GET %s: the answer is larger than %d bytes", u, maxBody)
	}
	if err := json.Unmarshal(body, v); err != nil {
		return fmt.Errorf("GET %s: %w", u, err)
	}
	return nil
}

func (c *client) pageQuery(page int) string {
	return "?count=" + strconv.Itoa(c.pageSize) + "&page=" + strconv.Itoa(page)
}

// all reads every entry of the collection at path, page by page
// (?count=N&page=P), and returns them with the number of pages read. The
// pages must agree on total_size and add up to it; otherwise the
// collection changed in between and the error is errInconsistent.
func all[T any](ctx context.Context, c *client, path string) ([]T, int, error) {
	var out []T
	total := -1
	for page := 1; ; page++ {
		var p collection[T]
		if err := c.get(ctx, path+c.pageQuery(page), &p); err != nil {
			return nil, page, err
		}
		switch {
		case p.TotalSize < 0 || p.Start < 0 || p.TotalSize > maxEntries:
			return nil, page, fmt.Errorf("GET %s%s: total_size %d, start %d: out of range", c.base, path, p.TotalSize, p.Start)
		case total >= 0 && p.TotalSize != total:
			return nil, page, errInconsistent
		case len(p.Entries) > c.pageSize:
			return nil, page, fmt.Errorf("GET %s%s: %d entries on a page of %d", c.base, path, len(p.Entries), c.pageSize)
		}
		total = p.TotalSize
		out = append(out, p.Entries...)
		if len(out) >= total || len(p.Entries) < c.pageSize {
			if len(out) != total {
				return nil, page, errInconsistent
			}
			return out, page, nil
		}
	}
}

// fetch reads every list, every domain and the MTA settings. prev is the
// last good read (nil if none): when the lists took more than one page,
// each list of prev that is missing now is asked for alone, since a list
// created or removed between two pages shifts the ones after it; if one
// still exists, the pages did not fit and fetch reads them again.
func (c *client) fetch(ctx context.Context, prev *Data) (*Data, error) {
	var err error
	for range 3 {
		var d *Data
		d, err = c.fetchOnce(ctx, prev)
		if !errors.Is(err, errInconsistent) {
			return d, err
		}
	}
	return nil, fmt.Errorf("GET %s/lists: %w, three times in a row", c.base, err)
}

func (c *client) fetchOnce(ctx context.Context, prev *Data) (*Data, error) {
	rls, pages, err := all[restList](ctx, c, "/lists")
	if err != nil {
		return nil, err
	}
	d := &Data{Lists: make([]List, 0, len(rls))}
	for _, r := range rls {
		d.Lists = append(d.Lists, r.list())
	}
	slices.SortFunc(d.Lists, compareLists)
	if pages > 1 && hasDup(d.Lists) {
		return nil, errInconsistent // a list on two pages
	}
	if pages > 1 && prev != nil {
		if err := c.confirmGone(ctx, prev.Lists, d.Lists); err != nil {
			return nil, err
		}
	}
	rds, _, err := all[restDomain](ctx, c, "/domains")
	if err != nil {
		return nil, err
	}
	for _, r := range rds {
		d.Domains = append(d.Domains, Domain{Name: string(r.MailHost), AliasDomain: string(r.AliasDomain)})
	}
	slices.SortFunc(d.Domains, func(a, b Domain) int { return cmp.Compare(a.Name, b.Name) })
	var m restMTA
	if err := c.get(ctx, "/system/configuration/mta", &m); err != nil {
		return nil, err
	}
	d.MTA = MTA{LMTPHost: string(m.LMTPHost), LMTPPort: string(m.LMTPPort), VERPDelimiter: string(m.VERPDelimiter)}
	return d, nil
}

// maxConfirm bounds the lists confirmGone asks for one by one; more
// missing lists at once are a real removal, not a page boundary moving.
const maxConfirm = 20

// confirmGone asks Mailman, list by list, whether each list of was that
// is missing from now is really gone (404); errInconsistent if one is
// still there.
func (c *client) confirmGone(ctx context.Context, was, now []List) error {
	var gone []List
	for _, l := range was {
		if _, ok := slices.BinarySearchFunc(now, l, compareLists); !ok {
			gone = append(gone, l)
		}
	}
	if len(gone) == 0 || len(gone) > maxConfirm {
		return nil
	}
	for _, l := range gone {
		var r restList
		err := c.get(ctx, "/lists/"+url.PathEscape(cmp.Or(l.ListID, l.Address)), &r)
		var se *statusError
		switch {
		case err == nil:
			return errInconsistent
		case errors.As(err, &se) && se.code == http.StatusNotFound:
		default:
			return err
		}
	}
	return nil
}

// hasDup reports whether a list of the sorted ls is there twice.
func hasDup(ls []List) bool {
	for i := 1; i < len(ls); i++ {
		if ls[i] == ls[i-1] {
			return true
		}
	}
	return false
}
