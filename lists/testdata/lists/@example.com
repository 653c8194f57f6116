aliases = ["lists.example.com"]
postmaster = "hostmaster@example.net"
