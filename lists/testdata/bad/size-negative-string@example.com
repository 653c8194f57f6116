max_message_size = "-1"
