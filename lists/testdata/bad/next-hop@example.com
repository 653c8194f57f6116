description = "a next hop Postfix's syntax does not have"

next_hop = "smtp:inet:127.0.0.1:25"
