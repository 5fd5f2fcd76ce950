extends Node
## The demo's one scene, both halves: a headless dedicated server (the `dedicated_server`
## feature, the headless display, or `--server`) or a client.
##
## The trust chain: the client signs in to Homeport, connects over ENet and sends its access
## token by RPC; the server asks Homeport to validate it and only then spawns the player.
## Movement is server-authoritative: the client predicts its own moves, the server applies
## the inputs and sends back the position with the last input it processed, and the client
## reconciles (takes the server's position, replays the inputs not yet processed).

const SPEED := 120.0
const DT := 1.0 / 60.0
const DEFAULT_PORT := 7777

# Server side.
var positions: Dictionary = {}
var inputs: Dictionary = {}
var processed: Dictionary = {}
var player_ids: Dictionary = {}
var totals: Dictionary = {}
var versions: Dictionary = {}

# Client side.
var options: Dictionary = {}
var welcomed: bool = false
var predicted: Vector2 = Vector2.ZERO
var server_position: Vector2 = Vector2.ZERO
var pending: Array[Array] = []
var sent: int = 0
var acked: int = 0
var planned_moves: int = 0

## The `Homeport` autoload, typed (also where scripts are checked without autoloads).
@onready var homeport: HomeportAutoload = get_node("/root/Homeport")


## One tick of movement: the same arithmetic on both sides, so a prediction matches.
static func step(from: Vector2, direction: Vector2) -> Vector2:
	return from + direction.limit_length(1.0) * SPEED * DT


func _ready() -> void:
	for argument: String in OS.get_cmdline_user_args():
		if argument.begins_with("--") and argument.contains("="):
			options[argument.substr(2, argument.find("=") - 2)] = argument.substr(
				argument.find("=") + 1
			)
	if HomeportServer.is_server_mode():
		await _start_server()
	else:
		await _start_client()


# --- the dedicated server -----------------------------------------------------------------


func _start_server() -> void:
	var server := homeport.server
	var port := server.port if server.port > 0 else DEFAULT_PORT
	var peer := ENetMultiplayerPeer.new()
	var error := peer.create_server(port, 32)
	if error != OK:
		push_error("cannot listen on %d: %s" % [port, error_string(error)])
		get_tree().quit(1)
		return
	multiplayer.multiplayer_peer = peer
	multiplayer.peer_disconnected.connect(_on_peer_left)
	server.player_validated.connect(_on_validated)
	server.player_rejected.connect(
		func(peer_id: int, why: String) -> void: print("rejected %d: %s" % [peer_id, why])
	)
	server.before_shutdown(_save_everyone)
	var name: String = str(options.get("name", "Homeport demo %d" % port))
	var started := await server.start(
		{"name": name, "port": port, "max_players": 32, "map": "plaza"}
	)
	print("SERVER %s on %d: %s" % [name, port, started])
	if not started.ok:
		get_tree().quit(1)


@rpc("any_peer", "reliable")
func hello(token: String) -> void:
	if not multiplayer.is_server():
		return
	var peer_id := multiplayer.get_remote_sender_id()
	if homeport.server.is_stopping():
		multiplayer.multiplayer_peer.disconnect_peer(peer_id)
		return
	await homeport.server.validate_player(peer_id, token)


func _on_validated(peer_id: int, player: Dictionary, data: Dictionary) -> void:
	var player_id: String = str(player.get("id", ""))
	var stored: Dictionary = _document(data, "profile", "demo")
	var value: Dictionary = stored.get("value", {})
	var moves: int = value.get("moves", 0)
	var version: int = stored.get("version", 0)
	player_ids[peer_id] = player_id
	positions[peer_id] = Vector2.ZERO
	inputs[peer_id] = []
	processed[peer_id] = 0
	totals[peer_id] = moves
	versions[player_id] = version
	print("spawned %s as peer %d (%d moves so far)" % [player_id, peer_id, moves])
	welcome.rpc_id(peer_id, player_id, moves)


@rpc("any_peer", "unreliable_ordered")
func move(seq: int, direction: Vector2) -> void:
	var peer_id := multiplayer.get_remote_sender_id()
	if multiplayer.is_server() and inputs.has(peer_id):
		var queue: Array = inputs[peer_id]
		queue.append([seq, direction])


func _physics_process(_delta: float) -> void:
	if (
		multiplayer.multiplayer_peer == null
		or multiplayer.multiplayer_peer is OfflineMultiplayerPeer
	):
		return
	if multiplayer.is_server():
		_server_tick()
	elif welcomed:
		_client_tick()


func _server_tick() -> void:
	for peer_id: int in inputs:
		var queue: Array = inputs[peer_id]
		if queue.is_empty():
			continue
		var position: Vector2 = positions[peer_id]
		var last: int = processed[peer_id]
		var total: int = totals[peer_id]
		for item: Array in queue:
			var seq: int = item[0]
			var direction: Vector2 = item[1]
			if seq > last:
				position = step(position, direction)
				last = seq
				total += 1
		queue.clear()
		positions[peer_id] = position
		processed[peer_id] = last
		totals[peer_id] = total
		snapshot.rpc_id(peer_id, position, last)


func _on_peer_left(peer_id: int) -> void:
	if player_ids.has(peer_id):
		await _save(peer_id)
		for table: Dictionary in [player_ids, positions, inputs, processed, totals]:
			table.erase(peer_id)
	homeport.server.player_left(peer_id)


func _save(peer_id: int) -> void:
	var player_id: String = player_ids[peer_id]
	var version: int = versions.get(player_id, 0)
	var result := await homeport.server.save_player_data(
		player_id, "profile", "demo", {"moves": totals[peer_id]}, version
	)
	if result.ok:
		var answer: Dictionary = result.data
		var saved: int = answer.get("version", version)
		versions[player_id] = saved
	print("saved %s: %s" % [player_id, result])


func _save_everyone() -> void:
	for peer_id: int in player_ids.keys():
		await _save(peer_id)


static func _document(data: Dictionary, collection: String, key: String) -> Dictionary:
	var documents: Variant = data.get(collection, {})
	if not documents is Dictionary:
		return {}
	var by_key: Dictionary = documents
	var found: Variant = by_key.get(key, {})
	return found if found is Dictionary else {}


# --- the client ---------------------------------------------------------------------------


func _start_client() -> void:
	planned_moves = str(options.get("moves", "0")).to_int()
	var client := homeport.client
	if str(options.get("url", "")) != "":
		client.http.base_url = str(options["url"])
	var device: String = str(options.get("device", ""))
	var login := await client.login_device(device)
	if not login.ok:
		print("CLIENT login failed: %s" % login)
		get_tree().quit(1)
		return
	var address: String = str(options.get("server-address", "127.0.0.1"))
	var port: int = str(options.get("server-port", str(DEFAULT_PORT))).to_int()
	var peer := ENetMultiplayerPeer.new()
	peer.create_client(address, port)
	multiplayer.multiplayer_peer = peer
	# `--token=` sends another token than the session's: how a forged one is turned away.
	var token: String = str(options.get("token", client._access_token))
	multiplayer.connected_to_server.connect(func() -> void: hello.rpc_id(1, token))
	multiplayer.server_disconnected.connect(_on_server_gone)


func _on_server_gone() -> void:
	print("CLIENT disconnected" if welcomed else "CLIENT REJECTED")
	get_tree().quit(2 if welcomed else 3)


@rpc("authority", "reliable")
func welcome(player_id: String, moves: int) -> void:
	welcomed = true
	print("CLIENT welcome %s (%d moves so far)" % [player_id, moves])


@rpc("authority", "unreliable_ordered")
func snapshot(position: Vector2, last_processed: int) -> void:
	# Reconcile: the server's word for everything up to `last_processed`, then our own
	# inputs it has not seen yet, replayed on top.
	server_position = position
	acked = maxi(acked, last_processed)
	while not pending.is_empty():
		var seq: int = pending[0][0]
		if seq > acked:
			break
		pending.pop_front()
	predicted = position
	for item: Array in pending:
		var direction: Vector2 = item[1]
		predicted = step(predicted, direction)


func _client_tick() -> void:
	if planned_moves > 0 and sent >= planned_moves:
		# Inputs travel unreliably: until the last is acknowledged, send the unacknowledged
		# ones again (the server skips what it has already applied).
		for item: Array in pending:
			var seq: int = item[0]
			var direction: Vector2 = item[1]
			move.rpc_id(1, seq, direction)
		if acked >= planned_moves:
			var error := predicted.distance_to(server_position)
			print("DEMO CLIENT OK moves=%d position=%s error=%.4f" % [sent, predicted, error])
			get_tree().quit(0 if error < 0.001 else 1)
		return
	sent += 1
	var direction := Vector2.RIGHT.rotated(sent * 0.05)
	predicted = step(predicted, direction)
	pending.append([sent, direction])
	move.rpc_id(1, sent, direction)
