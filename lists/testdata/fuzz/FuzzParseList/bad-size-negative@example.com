go test fuzz v1
[]byte("description = \"negative\"\nmax_message_size = -1\n")
