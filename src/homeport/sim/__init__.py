"""A simulated game: a reference dedicated server (`homeport.sim.server`) and its player client
(`homeport.sim.player`), for the fleet's tests, the benchmarks and the demo fleet.

It stands in for a headless Godot server using the Homeport addon, which a test machine cannot
run, and shows by example what such a server owes the platform: see `homeport.sim.server`.
"""
