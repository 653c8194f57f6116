go test fuzz v1
[]byte("max_message_size = \"10000000000GB\"\n")
