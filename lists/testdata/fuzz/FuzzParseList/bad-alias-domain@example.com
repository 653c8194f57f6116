go test fuzz v1
[]byte("aliases = [\"old@bad..example\"]\n")
