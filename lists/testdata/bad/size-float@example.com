max_message_size = 1.5
