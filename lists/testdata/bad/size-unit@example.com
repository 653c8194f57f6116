max_message_size = "10XB"
