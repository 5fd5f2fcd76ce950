"""The admin dashboard at `/admin`: server-rendered pages over the same services the API uses."""
