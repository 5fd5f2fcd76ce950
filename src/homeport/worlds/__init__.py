"""World persistence: binary chunks in object storage, committed as snapshots by one writer at a
time, so a server that crashes loads exactly its last complete save."""
