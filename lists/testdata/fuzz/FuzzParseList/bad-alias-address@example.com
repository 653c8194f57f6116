go test fuzz v1
[]byte("aliases = [\n  \"old@example.com\",\n  \"no-at-sign\",\n]\n")
