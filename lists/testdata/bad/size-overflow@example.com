max_message_size = "10000000000GB"
