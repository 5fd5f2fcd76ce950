"""Fleets: templates for dedicated-server processes, the servers started from them, the
autoscaler that keeps a buffer of ready ones and the allocation API that hands them out."""
