"""Domain events: a durable record plus delivery to subscribers in every process."""
