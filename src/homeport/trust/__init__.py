"""Server trust: dedicated servers, proven by their keys, ask who a connecting player is."""
