go test fuzz v1
[]byte("description = \"\"\"\nmulti-line\ntext\"\"\"\n\"aliases\" = [\"../etc@example.com\"]\n")
