description = "Developers"
