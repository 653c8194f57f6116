go test fuzz v1
[]byte("aliases = [\n  \"old@example.com\",\n  42,\n]\n")
