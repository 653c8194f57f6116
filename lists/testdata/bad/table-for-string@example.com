description = "x"

[list_id]
