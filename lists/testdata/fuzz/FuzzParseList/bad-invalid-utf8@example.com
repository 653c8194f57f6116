go test fuzz v1
[]byte("description = \"\xff\"\n")
