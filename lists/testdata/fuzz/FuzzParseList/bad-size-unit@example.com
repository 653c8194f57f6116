go test fuzz v1
[]byte("max_message_size = \"10XB\"\n")
