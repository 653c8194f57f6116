go test fuzz v1
[]byte("descripton = \"typo: never parsed\"\n")
