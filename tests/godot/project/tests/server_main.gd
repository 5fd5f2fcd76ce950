extends SceneTree
## A dedicated server as a game would write one with the addon, for the shutdown tests: it
## registers from its environment, reports an allocation, saves a player's document when it
## stops, and quits when the stop file appears or the heartbeat says drain.


func _initialize() -> void:
	_run.call_deferred()


func _run() -> void:
	var server := HomeportServer.new()
	root.add_child(server)
	server.configure_from_environment()
	server.before_shutdown(
		func() -> void:
			var player := OS.get_environment("HOMEPORT_TEST_PLAYER_ID")
			if player != "":
				var saved := await server.save_player_data(
					player, "profile", "progress", {"saved_on": "stop"}, 0
				)
				print("SAVED %s" % saved)
	)
	server.allocated.connect(
		func(allocation: Dictionary) -> void: print("ALLOCATED %s" % allocation.get("match_id"))
	)
	server.shutting_down.connect(func(reason: String) -> void: print("STOPPING %s" % reason))
	var result := await server.start(
		{"name": OS.get_environment("HOMEPORT_TEST_SERVER_NAME"), "max_players": 4}
	)
	print("REGISTERED %s" % server.server_id if result.ok else "REGISTER FAILED %s" % result)
	if not result.ok:
		quit(2)
