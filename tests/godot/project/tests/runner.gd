extends SceneTree
## The addon's tests against a live Homeport: `godot --headless --path P -s res://tests/runner.gd
## -- --url=URL --key=SERVER_KEY --silent-port=PORT`. Prints one line per test and a closing
## "N passed, M failed"; the exit status is 1 when any failed.

var passed := 0
var failed := 0
var args := {}
var current := ""
var current_failed := false


func _initialize() -> void:
	for argument: String in OS.get_cmdline_user_args():
		if argument.begins_with("--") and argument.contains("="):
			args[argument.substr(2, argument.find("=") - 2)] = argument.substr(
				argument.find("=") + 1
			)
	_run.call_deferred()


func _run() -> void:
	var tests: Array[Callable] = [
		test_answers_become_results,
		test_a_server_reads_its_configuration,
		test_requests_outside_the_table_are_not_sent,
		test_device_login_me_and_a_restored_session,
		test_email_account_link_refresh_and_logout,
		test_a_call_that_gets_no_answer_times_out,
		test_server_registers_and_is_listed,
		test_validate_accepts_a_player_and_refuses_a_bad_token,
		test_saves_are_versioned_and_queued_while_unreachable,
		test_a_world_saves_its_changes_and_loads_back,
		test_waiting_for_a_match_by_websocket_and_by_long_poll,
	]
	for test in tests:
		current = test.get_method()
		current_failed = false
		await test.call()
		print(("FAIL " if current_failed else "PASS ") + current)
		if current_failed:
			failed += 1
		else:
			passed += 1
	print("%d passed, %d failed" % [passed, failed])
	quit(0 if failed == 0 else 1)


func check(condition: bool, what: String) -> void:
	if not condition:
		current_failed = true
		print("  %s: %s" % [current, what])


## The value at `keys` inside nested dictionaries and arrays, null where the path breaks.
func dig(value: Variant, keys: Array) -> Variant:
	var here: Variant = value
	for key: Variant in keys:
		if here is Dictionary:
			var mapping: Dictionary = here
			here = mapping.get(key)
		elif here is Array and key is int:
			var items: Array = here
			var index: int = key
			here = items[index] if index < items.size() else null
		else:
			return null
	return here


## `dig` as text ("" for null); JSON numbers are floats, so whole ones lose their ".0".
func text(value: Variant, keys: Array) -> String:
	var found: Variant = dig(value, keys)
	if found == null:
		return ""
	if found is float:
		var number: float = found
		if number == floorf(number):
			return str(int(number))
	return str(found)


func transport(timeout: float = 10.0) -> HomeportHttp:
	var http := HomeportHttp.new()
	http.base_url = str(args["url"])
	http.timeout = timeout
	return http


func new_client(session_file: String) -> HomeportClient:
	var client := HomeportClient.new(transport())
	client.set_session_file(session_file)
	root.add_child(client)
	return client


func new_server() -> HomeportServer:
	var server := HomeportServer.new(transport())
	server.server_key = str(args["key"])
	server.quit_when_stopped = false
	root.add_child(server)
	return server


func test_device_login_me_and_a_restored_session() -> void:
	var client := new_client("user://device-session.dat")
	var device := "runner-device-%012d" % Time.get_ticks_usec()
	var login := await client.login_device(device)
	check(login.ok, "device login: %s" % login)
	check(client.is_signed_in(), "signed in after login")
	var me := await client.me()
	check(me.ok and text(me.data, ["id"]) == text(client.player, ["id"]), "me: %s" % me)
	var again := new_client("user://device-session.dat")
	check(again.restore_session(), "the session file restores")
	var me_again := await again.me()
	check(me_again.ok, "me after restoring: %s" % me_again)
	var plain := FileAccess.get_file_as_string("user://device-session.dat")
	check(not plain.contains("refresh"), "the session file is encrypted")


func test_email_account_link_refresh_and_logout() -> void:
	var client := new_client("user://email-session.dat")
	var email := "godot-%d@example.com" % Time.get_ticks_usec()
	var made := await client.register(email, "correct horse battery", "Godot")
	check(made.ok and made.status == 201, "register: %s" % made)
	var wrong := await client.login(email, "wrong password here")
	check(not wrong.ok and wrong.error_type == "invalid-credentials", "bad password: %s" % wrong)
	var login := await client.login(email, "correct horse battery")
	check(login.ok, "login: %s" % login)
	var refreshed := await client.refresh()
	check(refreshed.ok, "refresh: %s" % refreshed)
	var device := new_client("user://linked-session.dat")
	await device.login_device("runner-link-%d" % Time.get_ticks_usec())
	var linked := await device.link_email(
		"linked-%d@example.com" % Time.get_ticks_usec(), "correct horse battery"
	)
	check(linked.ok, "link email: %s" % linked)
	var out := await client.logout()
	check(out.ok, "logout: %s" % out)
	var after := await client.me()
	check(not after.ok and after.error_type == "not-signed-in", "me after logout: %s" % after)


func test_a_call_that_gets_no_answer_times_out() -> void:
	var http := HomeportHttp.new()
	http.base_url = "http://127.0.0.1:%s" % args["silent-port"]
	http.timeout = 1.0
	root.add_child(http)
	var started := Time.get_ticks_msec()
	var result := await http.request("auth.device", {}, {"device_id": "never-answered"})
	var took := (Time.get_ticks_msec() - started) / 1000.0
	check(not result.ok and result.error_type == "network", "no answer: %s" % result)
	check(took < 5.0, "ended after %.1f s" % took)


func test_server_registers_and_is_listed() -> void:
	var server := new_server()
	var name := "godot-%d" % Time.get_ticks_usec()
	var started := await server.start(
		{"name": name, "port": 7777, "max_players": 8, "map": "dunes"}
	)
	check(started.ok and server.server_id != "", "register: %s" % started)
	var client := new_client("user://lister.dat")
	var listed := await client.list_servers({"q": name})
	var servers: Array = dig(listed.data, ["servers"]) if listed.ok else []
	check(servers.size() == 1 and text(servers, [0, "map"]) == "dunes", "listed: %s" % listed)
	server.queue_free()


func test_validate_accepts_a_player_and_refuses_a_bad_token() -> void:
	var server := new_server()
	await server.start({"name": "validator", "port": 7778, "max_players": 8})
	var client := new_client("user://joiner.dat")
	await client.login_device("runner-join-%d" % Time.get_ticks_usec())
	var seen := {}
	server.player_validated.connect(
		func(peer: int, player: Dictionary, _data: Dictionary) -> void: seen[peer] = player["id"]
	)
	server.player_rejected.connect(func(peer: int, reason: String) -> void: seen[peer] = reason)
	var good := await server.validate_player(5, client._access_token)
	var player_id := text(client.player, ["id"])
	check(good.ok and text(seen, [5]) == player_id, "validated: %s" % good)
	check(text(server.players, [5]) == player_id, "the peer is known")
	var bad := await server.validate_player(6, "not-a-token")
	check(not bad.ok and text(seen, [6]) == "token-invalid", "refused: %s %s" % [bad, seen])
	server.queue_free()


func test_saves_are_versioned_and_queued_while_unreachable() -> void:
	var server := new_server()
	server.set_queue_file("user://queue-test.json")
	var client := new_client("user://saver.dat")
	await client.login_device("runner-save-%d" % Time.get_ticks_usec())
	var player_id := text(client.player, ["id"])
	var first := await server.save_player_data(player_id, "profile", "progress", {"xp": 10}, 0)
	check(first.ok and text(first.data, ["version"]) == "1", "first save: %s" % first)
	var stale := await server.save_player_data(player_id, "profile", "progress", {"xp": 5}, 0)
	check(stale.error_type == "version-conflict", "stale save: %s" % stale)
	server.http.base_url = "http://127.0.0.1:%s" % args["closed-port"]
	var offline := await server.save_player_data(player_id, "profile", "progress", {"xp": 20}, 1)
	check(
		not offline.ok and server.pending_count() == 1,
		"queued: %s, %d" % [offline, server.pending_count()]
	)
	server.http.base_url = str(args["url"])
	var sent := await server.flush_pending()
	check(sent == 1 and server.pending_count() == 0, "replayed %d" % sent)
	var stored := await client.read_data("profile", "progress")
	check(stored.ok and text(stored.data, ["value", "xp"]) == "20", "stored: %s" % stored)
	server.queue_free()


func random_bytes(size: int) -> PackedByteArray:
	var crypto := Crypto.new()
	return crypto.generate_random_bytes(size)


func new_world(name: String) -> HomeportWorld:
	var world := HomeportWorld.new(transport(), str(args["key"]), name)
	root.add_child(world)
	return world


func test_a_world_saves_its_changes_and_loads_back() -> void:
	var name := "godot-world-%d" % Time.get_ticks_usec()
	var world := new_world(name)
	var loaded := await world.load_world()
	check(loaded.ok and str(loaded.data) == "new", "a new world: %s" % loaded)
	for i in 4:
		world.set_chunk("%d,0" % i, random_bytes(2048))
	var first := await world.save()
	check(first.ok and world.base == 1, "first save: %s" % first)
	world.set_chunk("2,0", random_bytes(2048))
	var second := await world.save()
	check(second.ok and world.base == 2, "second save: %s" % second)
	var detail := await world.http.request("worlds.get", {"world": name}, null, str(args["key"]))
	check(
		text(detail.data, ["world", "chunks"]) == "5",
		"only the changed chunk was added: %s" % detail.data
	)
	var again := new_world(name)
	var reloaded := await again.load_world()
	check(reloaded.ok and str(reloaded.data) == "homeport", "reloaded: %s" % reloaded)
	for chunk_id: String in world.chunk_ids():
		check(again.get_chunk(chunk_id) == world.get_chunk(chunk_id), "chunk %s" % chunk_id)
	# A commit whose answer was lost: the latest is 3 while the server believes 2.
	var manifest: Variant = dig(detail.data, ["latest", "manifest"])
	var lost := await world.http.request(
		"worlds.commit", {"world": name}, {"base": 2, "manifest": manifest}, str(args["key"])
	)
	check(lost.ok, "the lost commit: %s" % lost)
	world.set_chunk("0,0", random_bytes(100))
	var caught_up := await world.save()
	check(caught_up.ok and world.base == 4, "caught up: %s, base %d" % [caught_up, world.base])
	var offline := new_world(name)
	offline.http.base_url = "http://127.0.0.1:%s" % args["closed-port"]
	var from_disk := await offline.load_world(0.0)
	check(from_disk.ok and str(from_disk.data) == "backup", "from the backup: %s" % from_disk)
	check(offline.get_chunk("0,0") == world.get_chunk("0,0"), "the backup holds the last save")
	check((await world.release()).ok, "lease given back")
	for node: Node in [world, again, offline]:
		node.queue_free()


func cancel_later(client: HomeportClient, ticket_id: String, delay: float) -> void:
	await create_timer(delay).timeout
	await client.cancel_ticket(ticket_id)


func test_waiting_for_a_match_by_websocket_and_by_long_poll() -> void:
	var client := new_client("user://queuer.dat")
	await client.login_device("runner-queue-%012d" % Time.get_ticks_usec())
	for via: String in ["websocket", "poll"]:
		client.use_websocket = via == "websocket"
		var ticket := await client.create_ticket("duel")
		check(ticket.ok, "ticket: %s" % ticket)
		var ticket_id := text(ticket.data, ["id"])
		cancel_later(client, ticket_id, 1.0)
		var started := Time.get_ticks_msec()
		var ended := await client.wait_for_match(ticket_id, 20.0)
		var took := (Time.get_ticks_msec() - started) / 1000.0
		check(
			ended.ok and text(ended.data, ["state"]) == "cancelled",
			"%s: %s %s" % [via, ended, ended.data]
		)
		check(str(ended.headers.get("via", "")) == via, "came by %s" % ended.headers.get("via"))
		check(took < 8.0, "%s: ended after %.1f s" % [via, took])


func test_answers_become_results() -> void:
	var json := PackedStringArray(["Content-Type: application/json"])
	var problem_headers := PackedStringArray(["Content-Type: application/problem+json"])
	var ok := HomeportHttp._result(
		[HTTPRequest.RESULT_SUCCESS, 201, json, '{"id": "a"}'.to_utf8_buffer()], false
	)
	check(ok.ok and ok.status == 201 and text(ok.data, ["id"]) == "a", "2xx: %s" % ok)
	check(str(ok.headers.get("content-type")) == "application/json", "headers in lower case")
	var body := JSON.stringify(
		{"type": "urn:homeport:problem:version-conflict", "detail": "d", "current_version": 3}
	)
	var refused := HomeportHttp._result(
		[HTTPRequest.RESULT_SUCCESS, 409, problem_headers, body.to_utf8_buffer()], false
	)
	check(not refused.ok and refused.error_type == "version-conflict", "problem: %s" % refused)
	check(text(refused.problem, ["current_version"]) == "3", "the problem's members are kept")
	check(not refused.is_retryable(), "a 409 is not retried")
	var plain := HomeportHttp._result(
		[HTTPRequest.RESULT_SUCCESS, 502, PackedStringArray(), "Bad gateway".to_utf8_buffer()],
		false
	)
	check(plain.error_type == "http-502" and plain.is_retryable(), "a proxy's page: %s" % plain)
	var timed_out := HomeportHttp._result(
		[HTTPRequest.RESULT_TIMEOUT, 0, PackedStringArray(), PackedByteArray()], false
	)
	check(timed_out.error_type == "network" and timed_out.is_retryable(), "timeout: %s" % timed_out)
	var raw := HomeportHttp._result(
		[HTTPRequest.RESULT_SUCCESS, 200, PackedStringArray(), PackedByteArray([1, 2, 3])], true
	)
	var bytes: PackedByteArray = raw.data if raw.data is PackedByteArray else PackedByteArray()
	check(raw.ok and bytes == PackedByteArray([1, 2, 3]), "binary answers stay bytes")


func test_a_server_reads_its_configuration() -> void:
	var server := HomeportServer.new()
	root.add_child(server)
	server.configure_from_environment()
	check(server.http.base_url == str(args["url"]), "url from --url=: %s" % server.http.base_url)
	check(server.server_key == str(args["key"]), "key from --key=")
	check(HomeportServer.is_server_mode(), "headless is server mode")
	server.queue_free()


func test_requests_outside_the_table_are_not_sent() -> void:
	var http := transport()
	root.add_child(http)
	var refused := {
		"unknown": await http.request("auth.telepathy"),
		"field": await http.request("auth.device", {}, {"device_id": "d", "admin": true}),
		"required": await http.request("auth.login", {}, {"email": "a@example.com"}),
		"path": await http.request("matchmaking.cancel"),
		"stray": await http.request("me", {"player": "p"}),
		"query": await http.request("servers.list", {}, null, "", {"has_space": true}),
		"bytes": await http.request("worlds.upload", {"world": "w", "sha256": "0"}, {}),
		"body": await http.request("worlds.lease", {"world": "w"}, {"ttl": 5}),
	}
	for why: String in refused:
		var result: HomeportResult = refused[why]
		check(not result.ok and result.error_type == "contract", "%s: %s" % [why, result])
	var built := http.prepare(
		"leaderboards.records", {"board_id": "high score/1"}, null, "tok", {"limit": 5}
	)
	var spec: Dictionary = built.data
	var headers: PackedStringArray = spec["headers"]
	check(
		str(spec["url"]).ends_with("/leaderboards/high%20score%2F1/records?limit=5"),
		"path and query: %s" % spec["url"]
	)
	check(headers.has("Authorization: Bearer tok"), "the credential: %s" % headers)
	var anonymous := http.prepare("servers.list")
	var plain: Dictionary = anonymous.data
	var sent: PackedStringArray = plain["headers"]
	check(not "\n".join(sent).contains("Authorization"), "no credential, no header: %s" % sent)
	http.queue_free()
