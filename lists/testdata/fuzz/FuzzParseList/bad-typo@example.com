go test fuzz v1
[]byte("description = \"ok\"\ndescripton = \"typo\"\n")
