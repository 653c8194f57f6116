aliases = ["old+tag@example.com"]
