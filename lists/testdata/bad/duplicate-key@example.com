description = "x"
description = "y"
