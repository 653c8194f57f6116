description = """
multi-line
text"""
"aliases" = ["../etc@example.com"]
