aliases = [
  "old@example.com",
  "no-at-sign",
]
