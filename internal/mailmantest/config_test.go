package mailmantest

import (
	"strings"
	"testing"
)

func TestConfig(t *testing.T) {
	m := &Mailman{VarDir: "/tmp/mailmantest-1/var", RESTUser: "restadmin", RESTPassword: "secret"}
	m.setPorts(40001, 40002)
	for _, tc := range []struct {
		name    string
		opts    Options
		want    []string // lines (or fragments spanning lines) the file must hold
		notWant []string
		err     string
	}{
		{
			name: "defaults",
			want: []string{
				"[mailman]\nlayout: mailmantest\n",
				"[paths.mailmantest]\nvar_dir: /tmp/mailmantest-1/var\nbin_dir: /usr/lib/mailman3/bin\n",
				"[database]\nclass: mailman.database.sqlite.SQLiteDatabase\nurl: sqlite:///$DATA_DIR/mailman.db\n",
				"[webservice]\nhostname: 127.0.0.1\nport: 40001\nadmin_user: restadmin\nadmin_pass: secret\n",
				"incoming: mailman.mta.null.NullMTA\nlmtp_host: 127.0.0.1\nlmtp_port: 40002\nsmtp_host: 127.0.0.1\nsmtp_port: 9\n",
				"[runner.rest]\nstart: yes\n", "[runner.lmtp]\nstart: yes\n",
				"[runner.in]\nstart: no\n", "[runner.command]\nstart: no\n", "[runner.bounces]\nstart: no\n",
				"[runner.out]\nstart: no\n", "[runner.task]\nstart: no\n",
			},
			notWant: []string{"8001", "8024", "8025", "smtp_port: 25"},
		},
		{
			name: "runners, SMTP and settings",
			opts: Options{
				Runners:  []string{"in", "pipeline"},
				SMTP:     "127.0.0.1:2525",
				Settings: map[string]map[string]string{"mta": {"incoming": "mailman.mta.postfix.LMTP"}, "mailman": {"site_owner": "owner@example.org"}},
			},
			want: []string{
				"[runner.in]\nstart: yes\n", "[runner.pipeline]\nstart: yes\n", "[runner.command]\nstart: no\n",
				"smtp_host: 127.0.0.1\nsmtp_port: 2525\n",
				"incoming: mailman.mta.postfix.LMTP\n", "site_owner: owner@example.org\n",
			},
			notWant: []string{"NullMTA", "[runner.in]\nstart: no\n", "postmaster@mailmantest.invalid"},
		},
		{name: "unknown runner", opts: Options{Runners: []string{"incoming"}}, err: `unknown runner "incoming"`},
		{name: "bad SMTP", opts: Options{SMTP: "localhost"}, err: "Options.SMTP"},
		{name: "REST port", opts: Options{Settings: map[string]map[string]string{"webservice": {"port": "8001"}}}, err: "may not set [webservice] port"},
		{name: "LMTP port", opts: Options{Settings: map[string]map[string]string{"mta": {"lmtp_port": "8024"}}}, err: "may not set [mta] lmtp_port"},
		{name: "password", opts: Options{Settings: map[string]map[string]string{"webservice": {"admin_pass": "x"}}}, err: "may not set [webservice] admin_pass"},
		{name: "database", opts: Options{Settings: map[string]map[string]string{"database": {"url": "sqlite:////var/lib/mailman3/data/mailman.db"}}}, err: "may not set [database] url"},
		{name: "layout", opts: Options{Settings: map[string]map[string]string{"mailman": {"layout": "debian"}}}, err: "may not set [mailman] layout"},
		{name: "paths", opts: Options{Settings: map[string]map[string]string{"paths.debian": {"var_dir": "/var/lib/mailman3"}}}, err: "may not set [paths.debian] var_dir"},
		{name: "lmtp runner off", opts: Options{Settings: map[string]map[string]string{"runner.lmtp": {"start": "no"}}}, err: "may not set [runner.lmtp] start"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := m.config(tc.opts)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("config: %v, want an error saying %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			for _, w := range tc.want {
				if !strings.Contains(got, w) {
					t.Errorf("config lacks %q:\n%s", w, got)
				}
			}
			for _, w := range tc.notWant {
				if strings.Contains(got, w) {
					t.Errorf("config has %q:\n%s", w, got)
				}
			}
		})
	}
}
