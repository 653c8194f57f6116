aliases = "old@example.com"
