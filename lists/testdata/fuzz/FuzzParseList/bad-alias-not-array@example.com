go test fuzz v1
[]byte("aliases = \"old@example.com\"\n")
