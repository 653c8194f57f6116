description = "ÿ"
