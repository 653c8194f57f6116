description = 3
