package postconf

import (
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestDefaults(t *testing.T) {
	path := needPostconf(t)
	d, note := Tools{Postconf: path}.DefaultsOrBuiltin(context.Background(), "")
	if d.Builtin || !strings.HasPrefix(d.Version, "3.") || d.Source != "postconf -d (Postfix "+d.Version+")" {
		t.Errorf("defaults: %+v", d)
	}
	if note != "defaults from "+d.Source {
		t.Errorf("note %q", note)
	}
	if _, note := (Tools{Postconf: path}).DefaultsOrBuiltin(context.Background(), "saved.txt"); !strings.Contains(note, "this machine's postconf -d (Postfix 3.") || !strings.Contains(note, "if saved.txt comes from another Postfix") {
		t.Errorf("note for a file: %q", note)
	}
	for _, name := range []string{"relay_domains", "parent_domain_matches_subdomains", "myhostname"} {
		if _, ok := d.Get(name); !ok {
			t.Errorf("postconf -d has no %s", name)
		}
	}
	// The built-in defaults are 3.7's: where this Postfix is 3.7, they
	// agree with it.
	if strings.HasPrefix(d.Version, "3.7.") {
		b := BuiltinDefaults()
		for name, v := range b.values {
			if got, _ := d.Get(name); name != "mail_version" && got != v {
				t.Errorf("built-in %s = %q; postconf -d says %q", name, v, got)
			}
		}
	}
}

// Without Postfix (a postconf that is not there), the built-in defaults,
// and a note that says so.
func TestDefaultsWithoutPostfix(t *testing.T) {
	for _, cmd := range []string{"/nonexistent/postconf", "listgate-no-such-postconf"} {
		tools := Tools{Postconf: cmd}
		if _, err := tools.Defaults(context.Background()); !errors.Is(err, ErrNotInstalled) {
			t.Errorf("%s: Defaults error %v, want ErrNotInstalled", cmd, err)
		}
		d, note := tools.DefaultsOrBuiltin(context.Background(), "main.cf")
		if !d.Builtin || note != "Postfix not installed here; built-in defaults of Postfix 3.7" {
			t.Errorf("%s: %+v, note %q", cmd, d, note)
		}
	}
}

// Running reads postconf -n and -P of an instance and its main.cf, where
// a parameter set twice shows, with both lines.
func TestRunning(t *testing.T) {
	path := needPostconf(t)
	dir := t.TempDir()
	mainCF := "recipient_delimiter = +\nrelay_domains = example.org\nmyhostname = mx.example.org\n" +
		"smtpd_relay_restrictions = permit_mynetworks\n    reject_unauth_destination\nrecipient_delimiter = +\n"
	masterCF := "smtp      inet  n       -       y       -       -       smtpd\n  -o smtpd_milters=\n"
	writeConfig(t, dir, map[string]string{"main.cf": mainCF, "master.cf": masterCF})
	c, notes, err := Tools{Postconf: path, ConfigDir: dir}.Running(context.Background())
	if err != nil || len(notes) != 0 {
		t.Fatalf("Running: %v, notes %q", err, notes)
	}
	file := filepath.Join(dir, "main.cf")
	dups := c.Duplicates()
	if len(dups) != 1 || dups[0][0].Pos() != file+":1" || dups[0][1].Pos() != file+":6" {
		t.Errorf("duplicates %v, want recipient_delimiter at %s:1 and :6", dups, file)
	}
	if v, _ := c.Get("smtpd_relay_restrictions"); v != "permit_mynetworks reject_unauth_destination" {
		t.Errorf("smtpd_relay_restrictions = %q", v)
	}
	if v, ok := c.Override("smtp/inet", "smtpd_milters"); !ok || v != "" {
		t.Errorf("master.cf override: %q, %v (master %v)", v, ok, c.Master)
	}

	if _, _, err := (Tools{Postconf: path, ConfigDir: filepath.Join(dir, "none")}).Running(context.Background()); err == nil || !strings.Contains(err.Error(), "postconf -c") {
		t.Errorf("Running without main.cf: %v", err)
	}
}

// Query asks postmap(1) about a file table; a missing file is said
// without it; network tables are never asked.
func TestLookupTables(t *testing.T) {
	path := needPostconf(t)
	dir := t.TempDir()
	table := filepath.Join(dir, "transport")
	if err := os.WriteFile(table, []byte("example.org lmtp:inet:127.0.0.1:8024\n.example.org error:nowhere\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	writeConfig(t, dir, map[string]string{"main.cf": ""}) // postmap reads it
	tools := Tools{Postconf: path, ConfigDir: dir}
	if _, err := tools.run(context.Background(), tools.postmap(), "hash:"+table); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	c, err := Parse("relay_domains = example.org, sub.example.org, other.example\n"+
		"transport_maps = hash:"+table+", hash:/nonexistent/transport, tcp:"+ln.Addr().String()+"\n", "main.cf")
	if err != nil {
		t.Fatal(err)
	}
	s := NewSettings(c, BuiltinDefaults(), Options{Tools: tools})
	for domain, want := range map[string]string{
		"example.org":     "lmtp:inet:127.0.0.1:8024 by transport_maps (hash:" + table + ")",
		"sub.example.org": "error:nowhere by transport_maps (hash:" + table + ")",
		"other.example":   "relay: (the recipient domain's MX) by relay_transport",
	} {
		if r := s.Route(domain, s.Class(domain)); r.String()+" by "+r.By != want {
			t.Errorf("Route(%s) = %v by %s, want %s", domain, r, r.By, want)
		}
	}
	notes := strings.Join(s.Notes(), "\n")
	for _, want := range []string{
		"transport_maps: cannot read hash:/nonexistent/transport (stat /nonexistent/transport.db: no such file or directory)",
		"transport_maps: cannot read tcp:" + ln.Addr().String() + ": \"tcp\" tables are not looked up by --check",
	} {
		if !strings.Contains(notes, want) {
			t.Errorf("no note %q in:\n%s", want, notes)
		}
	}
	// Nothing connected to the tcp: table: a connection would be
	// waiting in the backlog.
	ln.(*net.TCPListener).SetDeadline(time.Now())
	if conn, err := ln.Accept(); err == nil {
		conn.Close()
		t.Error("the tcp: table was queried")
	}
}

// A postmap that does not answer is given up on after Tools.Timeout.
func TestQueryTimeout(t *testing.T) {
	dir := t.TempDir()
	postmap := filepath.Join(dir, "postmap")
	if err := os.WriteFile(postmap, []byte("#!/bin/sh\nexec sleep 60\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	_, _, err := Tools{Postmap: postmap, Timeout: 200 * time.Millisecond}.Query(context.Background(), "hash:/etc/x", "k")
	if err == nil || !strings.Contains(err.Error(), "no answer within 200ms") || time.Since(start) > 5*time.Second {
		t.Errorf("Query: %v after %v", err, time.Since(start))
	}
}
