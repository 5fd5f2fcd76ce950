class_name HomeportServer
extends Node
## The dedicated server's half: registration and heartbeats, validating joining players, saving
## their data without losing it, and a graceful shutdown on a drain, a stop file or a call.
##
## Configure it from the environment a Homeport fleet gives every server (`HOMEPORT_URL`,
## `HOMEPORT_SERVER_KEY`, `HOMEPORT_SERVER_ID`, `HOMEPORT_PORT`, `HOMEPORT_ADDRESS`,
## `HOMEPORT_STOP_FILE`) or from user arguments after `--` (`--url=`, `--key=`, `--port=`).
## Under Agones (`AGONES_SDK_HTTP_PORT` set) it also drives the SDK sidecar: ready after
## registering, health pings, the allocation and shutdown from the GameServer's watch, and
## `/shutdown` once the graceful shutdown is done.
## Keep the server key out of the project: it must never ship to players.

## Registered; heartbeats run from now on.
signal registered(server_id: String)
## A joining player Homeport vouched for, with their documents (`profile` by default).
signal player_validated(peer_id: int, player: Dictionary, data: Dictionary)
## A joining player Homeport refused (`token-expired`, `player-banned`, ...); already disconnected.
signal player_rejected(peer_id: int, reason: String)
## The fleet allocated this server to a match (`match_id`, `players`, `metadata`).
signal allocated(allocation: Dictionary)
## The shutdown began (`drain`, `stop-file`, or what `shutdown_gracefully` was given).
signal shutting_down(reason: String)

const QUEUE_FILE := "user://homeport_pending_saves.json"
const STOP_FILE_POLL := 0.25
const SAVE_ATTEMPTS := 3

var http: HomeportHttp
var server_key: String = ""
## This server's id in the registry ("" until registered).
var server_id: String = ""
var port: int = 0
var address: String = ""
var stop_file: String = ""
## Peer id → player id, for everyone validated and still connected.
var players: Dictionary = {}
## "ready" or "in_match", reported with every heartbeat.
var state: String = "ready"
## Called when true (default) once the shutdown is done: quit with 0, or 1 if saves were lost.
var quit_when_stopped: bool = true
var heartbeat_interval: float = 30.0
## The Agones SDK sidecar when the server runs under Agones, else null.
var agones: HomeportAgones
var _entry: Dictionary = {}
var _fleet_server_id: String = ""
var _heartbeat: Timer
var _stop_watch: Timer
var _stopping: bool = false
var _before_stop: Array[Callable] = []
var _allocation_id: String = ""
var _queue_file: String = QUEUE_FILE


func _init(transport: HomeportHttp = null) -> void:
	http = transport if transport != null else HomeportHttp.new()


func _ready() -> void:
	if http.get_parent() == null:
		add_child(http)


## True in a dedicated server: the `dedicated_server` feature (a server export), the headless
## display server, or `--server` among the user arguments; `--client` says otherwise (a client
## run headless, in tests or bots).
static func is_server_mode() -> bool:
	var args := OS.get_cmdline_user_args()
	if args.has("--client"):
		return false
	return (
		OS.has_feature("dedicated_server")
		or DisplayServer.get_name() == "headless"
		or args.has("--server")
	)


## Read the settings: user arguments first, then the environment the fleet sets.
func configure_from_environment() -> void:
	var args := {}
	for argument: String in OS.get_cmdline_user_args():
		if argument.begins_with("--") and argument.contains("="):
			var name := argument.substr(2, argument.find("=") - 2)
			args[name] = argument.substr(argument.find("=") + 1)
	http.base_url = str(args.get("url", _env("HOMEPORT_URL", http.base_url))).trim_suffix("/")
	server_key = str(args.get("key", _env("HOMEPORT_SERVER_KEY", server_key)))
	port = str(args.get("port", _env("HOMEPORT_PORT", str(port)))).to_int()
	address = str(args.get("address", _env("HOMEPORT_ADDRESS", address)))
	stop_file = str(args.get("stop-file", _env("HOMEPORT_STOP_FILE", stop_file)))
	_fleet_server_id = _env("HOMEPORT_SERVER_ID", "")
	var sdk_port := HomeportAgones.port_from_environment()
	if sdk_port > 0 and agones == null:
		use_agones(sdk_port)


## Drive the Agones SDK sidecar on `sdk_port` (done by itself when `AGONES_SDK_HTTP_PORT` is set).
func use_agones(sdk_port: int) -> void:
	agones = HomeportAgones.new(sdk_port)
	agones.name = "Agones"
	add_child(agones)
	agones.game_server_changed.connect(_on_game_server)


## Where saves that could not reach Homeport wait to be replayed.
func set_queue_file(path: String) -> void:
	_queue_file = path


## Register (`name`, `max_players`, `map`, `mode`, `region`, `version`, `tags`, `metadata`...;
## `port` and `address` come from the configuration), start heartbeating and watching for the
## stop file, and replay saves left from an earlier run.
func start(entry: Dictionary) -> HomeportResult:
	_entry = entry.duplicate()
	var chosen_port: int = _entry.get("port", port)
	_entry["port"] = chosen_port
	if address != "" and not _entry.has("address"):
		_entry["address"] = address
	if agones != null:
		agones.start_health()
		await _public_address_from_agones()
	var result := await _register()
	if not result.ok:
		return result
	if _heartbeat == null:
		_heartbeat = Timer.new()
		_heartbeat.timeout.connect(_beat)
		add_child(_heartbeat)
	_heartbeat.start(heartbeat_interval)
	if stop_file != "" and _stop_watch == null:
		_stop_watch = Timer.new()
		_stop_watch.timeout.connect(_check_stop_file)
		add_child(_stop_watch)
		_stop_watch.start(STOP_FILE_POLL)
	await flush_pending()
	if agones != null:
		var marked := await agones.mark_ready()
		if not marked.ok:
			return marked
		agones.watch()
	return result


## Ask Homeport whether the joining peer's token (an access token or a match's connect token)
## is good. Emits `player_validated`, or `player_rejected` and disconnects the peer.
func validate_player(peer_id: int, token: String) -> HomeportResult:
	var body := {"player_token": token}
	if server_id != "":
		body["server_id"] = server_id
	var result := await http.request("validate", {}, body, server_key)
	if _stopping:
		result = HomeportResult.failure(503, "server-draining", "The server is shutting down")
	if result.ok:
		var answer: Dictionary = result.data
		var player: Dictionary = answer.get("player", {})
		players[peer_id] = str(player.get("id", ""))
		player_validated.emit(peer_id, player, answer.get("data", {}))
	else:
		player_rejected.emit(peer_id, result.error_type)
		_disconnect(peer_id)
	return result


## Forget a peer that left (after saving it).
func player_left(peer_id: int) -> void:
	players.erase(peer_id)


## Save one document of a player, naming the version it replaces (0: create). Retried with
## back-off while Homeport is unreachable, then queued to a file and replayed later; a
## `version-conflict` is returned as is, for the game to merge.
func save_player_data(
	player_id: String, collection: String, key: String, value: Dictionary, version: int
) -> HomeportResult:
	var params := {"player": player_id, "collection": collection, "key": key}
	var body := {"value": value, "version": version}
	var result := HomeportResult.failure(0, "network", "not sent")
	var pause := 0.5
	for attempt in SAVE_ATTEMPTS:
		result = await http.request("data.write", params, body, server_key)
		if not result.is_retryable():
			return result
		if attempt < SAVE_ATTEMPTS - 1:
			await get_tree().create_timer(pause).timeout
			pause *= 2.0
	_enqueue({"operation": "data.write", "params": params, "body": body})
	return result


## How many saves wait in the queue file.
func pending_count() -> int:
	return _read_queue().size()


## Replay queued saves; the ones that still cannot reach Homeport stay queued. A replay that
## meets a newer version is dropped (the newer save wins) and reported with a warning.
func flush_pending() -> int:
	var queue := _read_queue()
	var left: Array = []
	var sent := 0
	for item: Dictionary in queue:
		var params: Dictionary = item.get("params", {})
		var operation: String = str(item.get("operation", ""))
		var result := await http.request(operation, params, item.get("body"), server_key)
		if result.is_retryable():
			left.append(item)
		elif result.ok:
			sent += 1
		else:
			push_warning("Homeport: a queued save was refused (%s)" % result.error_type)
	_write_queue(left)
	return sent


## Run `step` (awaited) when the shutdown begins, before deregistering: save your players here.
func before_shutdown(step: Callable) -> void:
	_before_stop.append(step)


## Stop accepting, run the `before_shutdown` steps (save everyone), deregister, and quit with 0
## (1 if saves are still queued). Called by a drain action, the stop file, or the game.
func shutdown_gracefully(reason: String = "requested") -> void:
	if _stopping:
		return
	_stopping = true
	shutting_down.emit(reason)
	if _heartbeat != null:
		_heartbeat.stop()
	if _stop_watch != null:
		_stop_watch.stop()
	for step in _before_stop:
		await step.call()
	await flush_pending()
	if server_id != "":
		await http.request("servers.deregister", {"server_id": server_id}, null, server_key)
	if agones != null:
		agones.stop()
		await agones.shutdown()
	if quit_when_stopped:
		get_tree().quit(0 if pending_count() == 0 else 1)


## True once the shutdown began: refuse new players.
func is_stopping() -> bool:
	return _stopping


func _register() -> HomeportResult:
	var result := await http.request("servers.register", {}, _entry, server_key)
	if result.ok:
		var answer: Dictionary = result.data
		server_id = str(answer.get("server_id", ""))
		var interval: float = answer.get("heartbeat_interval", heartbeat_interval)
		heartbeat_interval = maxf(1.0, interval)
		registered.emit(server_id)
	return result


func _beat() -> void:
	if _stopping or server_id == "":
		return
	var body := {"players": players.size(), "player_ids": players.values(), "state": state}
	var result := await http.request(
		"servers.heartbeat", {"server_id": server_id}, body, server_key
	)
	if _stopping:
		return
	if result.error_type == "server-not-registered":  # the lease ran out (a long pause): again
		_entry["players"] = players.size()
		await _register()
		return
	if not result.ok:
		push_warning("Homeport: heartbeat failed (%s); the next one tries again" % result)
		return
	var answer: Dictionary = result.data
	var found: Variant = answer.get("allocation")
	if found is Dictionary:
		var allocation: Dictionary = found
		var allocation_id: String = str(allocation.get("allocation_id", ""))
		if allocation_id != _allocation_id:
			_allocation_id = allocation_id
			state = "in_match"
			allocated.emit(allocation)
	if answer.get("action") == "drain":
		shutdown_gracefully("drain")


## Under Agones players reach the server at the GameServer's address and host port (the
## container's port is private to the pod): register those, so the browser lists them and
## Homeport's allocator finds this entry for the GameServer it allocated.
func _public_address_from_agones() -> void:
	var got := await agones.fetch_game_server()
	if not got.ok:
		push_warning("Homeport: cannot read the GameServer (%s); registering as configured" % got)
		return
	var status: Dictionary = agones.game_server.get("status", {})
	var ports: Array = status.get("ports", [])
	var public_address: String = str(status.get("address", ""))
	if public_address != "":
		_entry["address"] = public_address
	for found: Variant in ports:
		if found is Dictionary:
			var entry: Dictionary = found
			var named: String = str(entry.get("name", ""))
			if named == agones.port_name or ports.size() == 1:
				var host_port: int = entry.get("port", 0)
				if host_port > 0:
					_entry["port"] = host_port
				break


## Under Agones: an allocation names its match in the annotations Homeport's allocator sets
## (`homeport.dev/match-id`, `homeport.dev/allocation-id`); Shutdown ends the server.
func _on_game_server(game_server: Dictionary) -> void:
	match agones.state():
		"Allocated":
			var notes := agones.annotations()
			var meta: Dictionary = game_server.get("object_meta", {})
			var fallback := str(meta.get("uid", "agones"))
			var allocation_id := str(notes.get("homeport.dev/allocation-id", fallback))
			if allocation_id != _allocation_id:
				_allocation_id = allocation_id
				state = "in_match"
				var allocation := {
					"allocation_id": allocation_id,
					"match_id": str(notes.get("homeport.dev/match-id", "")),
					"metadata": notes,
					"game_server": game_server,
				}
				allocated.emit(allocation)
		"Shutdown":
			shutdown_gracefully("agones")


func _check_stop_file() -> void:
	if FileAccess.file_exists(stop_file):
		shutdown_gracefully("stop-file")


func _disconnect(peer_id: int) -> void:
	var peer := multiplayer.multiplayer_peer
	if peer != null and not peer is OfflineMultiplayerPeer and peer_id > 0:
		peer.disconnect_peer(peer_id)


func _enqueue(item: Dictionary) -> void:
	var queue := _read_queue()
	queue.append(item)
	_write_queue(queue)


func _read_queue() -> Array:
	if not FileAccess.file_exists(_queue_file):
		return []
	var parsed: Variant = JSON.parse_string(FileAccess.get_file_as_string(_queue_file))
	return parsed if parsed is Array else []


func _write_queue(queue: Array) -> void:
	if queue.is_empty():
		if FileAccess.file_exists(_queue_file):
			DirAccess.remove_absolute(ProjectSettings.globalize_path(_queue_file))
		return
	var file := FileAccess.open(_queue_file, FileAccess.WRITE)
	if file == null:
		push_error("Homeport: cannot write the save queue %s" % _queue_file)
		return
	file.store_string(JSON.stringify(queue))
	file.close()


static func _env(name: String, fallback: String) -> String:
	return OS.get_environment(name) if OS.has_environment(name) else fallback
