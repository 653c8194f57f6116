go test fuzz v1
[]byte("description = \"x\"\ndescription = \"y\"\n")
