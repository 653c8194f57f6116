package postconf

// Defaults are Postfix's default parameter values, as "postconf -d"
// prints them: what a parameter is when main.cf does not set it.
type Defaults struct {
	values map[string]string
	// Version is the mail_version of the Postfix that printed them;
	// "3.7" for BuiltinDefaults.
	Version string
	// Source says where they come from, for a reader of --check's
	// output: "postconf -d (Postfix 3.7.11)" or "built-in defaults of
	// Postfix 3.7".
	Source string
	// Builtin is set for BuiltinDefaults: a few parameters, not all.
	Builtin bool
}

// Get returns the default of a parameter, unexpanded.
func (d *Defaults) Get(name string) (string, bool) {
	v, ok := d.values[name]
	return v, ok
}

// builtin is part of "postconf -d" of Postfix 3.7: the parameters the
// checks read. myhostname and mydomain depend on the host and are left
// out: a reference to them stays unexpanded.
const builtin = `compatibility_level = 0
config_directory = /etc/postfix
default_transport = smtp
local_transport = local:$myhostname
mail_version = 3.7
mailbox_size_limit = 51200000
message_size_limit = 10240000
milter_default_action = tempfail
mydestination = $myhostname, localhost.$mydomain, localhost
non_smtpd_milters =
parent_domain_matches_subdomains = debug_peer_list,fast_flush_domains,mynetworks,permit_mx_backup_networks,qmqpd_authorized_clients,relay_domains,smtpd_access_maps
queue_directory = /var/spool/postfix
receive_override_options =
recipient_delimiter =
relay_domains = ${{$compatibility_level} <level {2} ? {$mydestination} : {}}
relay_recipient_maps =
relay_transport = relay
smtpd_milter_maps =
smtpd_milters =
smtpd_policy_service_default_action = 451 4.3.5 Server configuration problem
smtpd_recipient_restrictions =
smtpd_reject_unlisted_recipient = yes
smtpd_relay_restrictions = ${{$compatibility_level} <level {1} ? {} : {permit_mynetworks, permit_sasl_authenticated, defer_unauth_destination}}
transport_maps =
virtual_alias_domains = $virtual_alias_maps
virtual_alias_maps = $virtual_maps
virtual_mailbox_domains = $virtual_mailbox_maps
virtual_mailbox_limit = 51200000
virtual_mailbox_maps =
virtual_maps =
virtual_transport = virtual
`

// BuiltinDefaults returns the defaults of Postfix 3.7 for the parameters
// the checks read, for a machine where Postfix is not installed.
func BuiltinDefaults() *Defaults {
	c, _ := Parse(builtin, "builtin") // a constant; TestBuiltinDefaults parses it
	return newDefaults(c, "built-in defaults of Postfix 3.7", true)
}

func newDefaults(c *Config, source string, builtin bool) *Defaults {
	d := &Defaults{values: map[string]string{}, Source: source, Builtin: builtin}
	for _, p := range c.Main {
		d.values[p.Name] = p.Value
	}
	d.Version = d.values["mail_version"]
	return d
}
