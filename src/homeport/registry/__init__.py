"""Server registry and browser: dedicated servers register, heartbeat and are listed."""
