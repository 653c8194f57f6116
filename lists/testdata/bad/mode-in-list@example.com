# mode is the domain file's key
mode = "observe"
