aliases = ["old@bad..example"]
