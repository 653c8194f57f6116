aliases = ["lists.example.com"]
