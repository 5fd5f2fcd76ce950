"""`homeport demo`: Homeport, a fleet of reference dedicated servers and simulated players on
this machine, with a live view of what they do."""
