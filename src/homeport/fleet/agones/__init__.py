"""Fleets whose game servers Agones runs on Kubernetes: allocation through
`GameServerAllocation`, state from `GameServer`, sizing through the `Fleet` scale subresource.

Importing this package costs nothing; the Kubernetes client loads with `homeport.fleet.agones.
cluster`, the first time a fleet of this provider is used.
"""
