"""Player data: JSON documents per player and collection, and the player's inventory."""
