"""Identity: player accounts, sessions and tokens, and the server keys that validate them."""
