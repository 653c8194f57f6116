next_hop = "exec:/usr/bin/mlmmj-receive -L /var/spool/mlmmj/{listname}"
