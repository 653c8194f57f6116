aliases = [
  "old@example.com",
  42,
]
