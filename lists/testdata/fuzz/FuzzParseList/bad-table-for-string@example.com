go test fuzz v1
[]byte("description = \"x\"\n\n[list_id]\n")
