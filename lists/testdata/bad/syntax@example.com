# a comment
description = "x"
list_id = = "y"
