go test fuzz v1
[]byte("description = 3\n")
