go test fuzz v1
[]byte("aliases = [\"lists.example.com\"]\n")
