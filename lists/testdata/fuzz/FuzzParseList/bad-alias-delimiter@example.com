go test fuzz v1
[]byte("aliases = [\"old+tag@example.com\"]\n")
