class_name HomeportAgones
extends Node
## The Agones SDK sidecar, for a dedicated server that runs as an Agones GameServer: it tells
## Agones the server is ready, keeps it healthy with pings, watches the GameServer (allocated,
## shut down, labels and annotations) and asks Agones to end it. HomeportServer uses it by
## itself when `AGONES_SDK_HTTP_PORT` is set; the sidecar answers on localhost, unauthenticated.

## The GameServer changed (state, labels, annotations...), as the watch reported it.
signal game_server_changed(game_server: Dictionary)

## The GameServer port players use (`spec.ports[].name` in the Fleet; Agones' default).
var port_name: String = "default"
## Seconds between health pings (Agones' default check: every 5 s, unhealthy after 3 misses).
var health_interval: float = 2.0
## The sidecar's REST API.
var http: HomeportHttp
## The GameServer as last reported: `object_meta` (`name`, `labels`, `annotations`) and
## `status` (`state`, `address`, `ports`).
var game_server: Dictionary = {}
var _health: Timer
var _watching: bool = false


func _init(sdk_port: int) -> void:
	http = HomeportHttp.new()
	http.table = "agones"
	http.base_url = "http://127.0.0.1:%d" % sdk_port
	http.timeout = 5.0


func _ready() -> void:
	add_child(http)


## The sidecar's port from the environment Agones gives the container (0 outside Agones).
static func port_from_environment() -> int:
	return OS.get_environment("AGONES_SDK_HTTP_PORT").to_int()


## Tell Agones the server takes players: the GameServer becomes Ready and may be allocated.
func mark_ready() -> HomeportResult:
	return await http.request("agones.ready", {}, {})


## Allocate this GameServer itself (a server that hands itself out, without an allocator).
func allocate() -> HomeportResult:
	return await http.request("agones.allocate", {}, {})


## Ask Agones to end this GameServer (after the last save; Agones then stops the pod).
func shutdown() -> HomeportResult:
	return await http.request("agones.shutdown", {}, {})


## Keep the GameServer out of allocation and scale-down for `seconds` (0: until changed).
func reserve(seconds: int) -> HomeportResult:
	return await http.request("agones.reserve", {}, {"seconds": str(seconds)})


## Set a label on the GameServer (Agones stores it as `agones.dev/sdk-<key>`).
func set_label(key: String, value: String) -> HomeportResult:
	return await http.request("agones.label", {}, {"key": key, "value": value})


## Set an annotation on the GameServer (stored as `agones.dev/sdk-<key>`).
func set_annotation(key: String, value: String) -> HomeportResult:
	return await http.request("agones.annotation", {}, {"key": key, "value": value})


## The GameServer now, read once.
func fetch_game_server() -> HomeportResult:
	var result := await http.request("agones.game_server")
	if result.ok and result.data is Dictionary:
		var current: Dictionary = result.data
		_changed(current)
	return result


## Ping the sidecar every `health_interval` seconds from now on.
func start_health() -> void:
	if _health == null:
		_health = Timer.new()
		_health.timeout.connect(_ping)
		add_child(_health)
	_health.start(health_interval)
	_ping()


## Follow the GameServer until `stop()`, reconnecting after a second when the stream drops.
func watch() -> void:
	if _watching:
		return
	_watching = true
	while _watching:
		var ended := await http.stream("agones.watch", _on_message)
		if not _watching:
			break
		if not ended.ok:
			push_warning("Homeport: the Agones watch stopped (%s); again in 1 s" % ended)
		await get_tree().create_timer(1.0).timeout


## Stop the pings and the watch.
func stop() -> void:
	_watching = false
	if _health != null:
		_health.stop()
	http.close_streams()


## The GameServer's state ("Scheduled", "Ready", "Allocated", "Reserved", "Shutdown", ...).
func state() -> String:
	var status: Dictionary = game_server.get("status", {})
	return str(status.get("state", ""))


## The GameServer's annotations (what the allocation set, for Homeport: the match).
func annotations() -> Dictionary:
	var meta: Dictionary = game_server.get("object_meta", {})
	var found: Variant = meta.get("annotations", {})
	return found if found is Dictionary else {}


func _ping() -> void:
	var result := await http.request("agones.health", {}, {})
	if not result.ok:
		push_warning("Homeport: Agones health ping failed (%s)" % result)


func _on_message(message: Variant) -> void:
	if message is Dictionary:
		var envelope: Dictionary = message
		var found: Variant = envelope.get("result")
		if found is Dictionary:
			var current: Dictionary = found
			_changed(current)


func _changed(current: Dictionary) -> void:
	game_server = current
	game_server_changed.emit(current)
