go test fuzz v1
[]byte("# a comment\ndescription = \"x\"\nlist_id = = \"y\"\n")
