keep = "yes"
