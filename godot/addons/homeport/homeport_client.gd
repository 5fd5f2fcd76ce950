class_name HomeportClient
extends Node
## The game client's half: accounts and sessions, the server browser, matchmaking tickets, the
## player's own data and leaderboards. Every call is awaitable and returns a HomeportResult.
##
## The session (refresh token included) is kept in `user://` encrypted with a key derived from
## this device, and the access token is refreshed by itself before it expires.

## Emitted when a session starts (login, registration, refresh, or restored from disk).
signal session_changed(player: Dictionary)
## Emitted when the session ends (logout, or a refresh the backend refused).
signal session_ended(reason: String)

const SESSION_FILE := "user://homeport_session.dat"
const REFRESH_MARGIN := 60.0

var http: HomeportHttp
## Wait for matches over the realtime WebSocket (false: long polls only, for networks
## whose proxies refuse WebSocket upgrades).
var use_websocket: bool = true
## The signed-in player (`id`, `display_name`, ...), empty when signed out.
var player: Dictionary = {}
var _access_token: String = ""
var _refresh_token: String = ""
var _access_expires_at: float = 0.0
var _session_file: String = SESSION_FILE


func _init(transport: HomeportHttp = null) -> void:
	http = transport if transport != null else HomeportHttp.new()


func _ready() -> void:
	if http.get_parent() == null:
		add_child(http)


## Where the session is kept (tests and several local profiles use other files).
func set_session_file(path: String) -> void:
	_session_file = path


## True while a session is held (it may need a refresh, which calls do by themselves).
func is_signed_in() -> bool:
	return _refresh_token != ""


## Create an account with email and password.
func register(email: String, password: String, display_name: String) -> HomeportResult:
	var body := {"email": email, "password": password, "display_name": display_name}
	return _started(await http.request("auth.register", {}, body))


## Sign in with email and password.
func login(email: String, password: String) -> HomeportResult:
	return _started(await http.request("auth.login", {}, {"email": email, "password": password}))


## Sign in anonymously as this device (an account is made on first use). Without an id, one
## is derived from the device.
func login_device(device_id: String = "") -> HomeportResult:
	var id := device_id if device_id != "" else "godot-" + OS.get_unique_id().sha256_text().left(40)
	return _started(await http.request("auth.device", {}, {"device_id": id}))


## Give an anonymous (device) account an email and password, so it can sign in anywhere.
func link_email(email: String, password: String) -> HomeportResult:
	return await authorized("auth.link_email", {}, {"email": email, "password": password})


## The signed-in player's profile.
func me() -> HomeportResult:
	return await authorized("me")


## End the session here and on the backend.
func logout() -> HomeportResult:
	var result := await authorized("auth.logout")
	_forget("logout")
	return result


## The server browser: live servers, filtered (`map`, `mode`, `region`, `version`, `tag`,
## `q`, `state`, `not_full`, `not_empty`, `has_password`, `sort`, `limit`, `cursor`). Signed
## out, the list is the public one.
func list_servers(filters: Dictionary = {}) -> HomeportResult:
	if _refresh_token == "":
		return await http.request("servers.list", {}, null, "", filters)
	return await authorized("servers.list", {}, null, filters)


## Queue for a match: the ticket (`id`, `state`).
func create_ticket(
	queue: String, properties: Dictionary = {}, latencies: Dictionary = {}
) -> HomeportResult:
	var body := {"queue": queue, "properties": properties, "latencies": latencies}
	return await authorized("matchmaking.create", {}, body)


## Wait up to `wait` seconds for the ticket to change (long poll): its state, and once
## `allocated`, the server's address and the connect token to join it with.
func wait_ticket(ticket_id: String, wait: float = 25.0) -> HomeportResult:
	var saved := http.timeout
	http.timeout = maxf(saved, wait + 10.0)
	var result := await authorized(
		"matchmaking.get", {"ticket_id": ticket_id}, null, {"wait": int(wait)}
	)
	http.timeout = saved
	return result


## Wait until the ticket ends (`allocated`, `timed_out`, `cancelled`, `failed`) or `timeout`
## seconds pass: pushed over the realtime WebSocket, or by long polls when a WebSocket
## cannot be opened (a proxy that refuses upgrades). `data` is the ticket; an `allocated`
## one has `server` (address, port) and `connect_token` to join it with. `via` tells which way
## the answer came ("websocket" or "poll").
func wait_for_match(ticket_id: String, timeout: float = 120.0) -> HomeportResult:
	var deadline := Time.get_ticks_msec() + int(timeout * 1000.0)
	if use_websocket:
		var pushed := await _wait_by_websocket(ticket_id, deadline)
		if pushed != null:
			return pushed
	while Time.get_ticks_msec() < deadline:
		var left := (deadline - Time.get_ticks_msec()) / 1000.0
		var polled := await wait_ticket(ticket_id, clampf(left, 1.0, 25.0))
		if not polled.ok:
			return polled
		if _ended(polled.data):
			polled.headers["via"] = "poll"
			return polled
	return HomeportResult.failure(
		0, "wait-timeout", "the ticket did not end within %d s" % int(timeout)
	)


func _wait_by_websocket(ticket_id: String, deadline: int) -> HomeportResult:
	if Time.get_unix_time_from_system() > _access_expires_at - REFRESH_MARGIN:
		await refresh()
	var built := http.prepare("realtime", {}, null, _access_token, {"ticket": ticket_id})
	if not built.ok:
		return null
	var spec: Dictionary = built.data
	var socket := WebSocketPeer.new()
	socket.handshake_headers = spec["headers"]
	var plain: String = spec["url"]
	var url := plain.replace("https://", "wss://").replace("http://", "ws://")
	var tls: TLSOptions = null
	if url.begins_with("wss://"):
		tls = TLSOptions.client_unsafe() if http.allow_self_signed_tls else TLSOptions.client()
	if socket.connect_to_url(url, tls) != OK:
		return null
	var opened := false
	var open_by := Time.get_ticks_msec() + int(http.timeout * 1000.0)
	while Time.get_ticks_msec() < deadline:
		socket.poll()
		var state := socket.get_ready_state()
		if state == WebSocketPeer.STATE_CLOSED:
			break
		if state == WebSocketPeer.STATE_OPEN:
			opened = true
			while socket.get_available_packet_count() > 0:
				var message: Variant = JSON.parse_string(socket.get_packet().get_string_from_utf8())
				if message is Dictionary:
					var pushed: Dictionary = message
					var found: Variant = pushed.get("ticket")
					var ticket: Dictionary = found if found is Dictionary else {}
					if str(ticket.get("id", "")) == ticket_id and _ended(ticket):
						socket.close()
						return HomeportResult.success(200, ticket, {"via": "websocket"})
		elif not opened and Time.get_ticks_msec() > open_by:
			break
		await get_tree().process_frame
	socket.close()
	return (
		null
		if not opened
		else HomeportResult.failure(0, "wait-timeout", "the ticket did not end in time")
	)


static func _ended(ticket: Variant) -> bool:
	if not ticket is Dictionary:
		return false
	var fields: Dictionary = ticket
	var state: String = str(fields.get("state", ""))
	return state not in ["searching", "matched"]


## Leave the queue.
func cancel_ticket(ticket_id: String) -> HomeportResult:
	return await authorized("matchmaking.cancel", {"ticket_id": ticket_id})


## One of the player's own documents (`value`, `version`).
func read_data(collection: String, key: String) -> HomeportResult:
	return await authorized("data.read_own", {"collection": collection, "key": key})


## A leaderboard's top records (`limit`), or the records around the player (`around_me`).
func leaderboard(board_id: String, limit: int = 10, around_me: bool = false) -> HomeportResult:
	var query := {"limit": limit}
	if around_me:
		query["around"] = str(player.get("id", ""))
	return await authorized("leaderboards.records", {"board_id": board_id}, null, query)


## Any request of the table (see HomeportHttp.request) as the signed-in player, refreshing the
## access token first when it is due.
func authorized(
	operation: String, params: Dictionary = {}, body: Variant = null, query: Dictionary = {}
) -> HomeportResult:
	if _refresh_token == "":
		return HomeportResult.failure(401, "not-signed-in", "Sign in first")
	if Time.get_unix_time_from_system() > _access_expires_at - REFRESH_MARGIN:
		var refreshed := await refresh()
		if not refreshed.ok:
			return refreshed
	var result := await http.request(operation, params, body, _access_token, query)
	if result.status == 401 and result.error_type == "token-expired":
		var again := await refresh()
		if not again.ok:
			return again
		result = await http.request(operation, params, body, _access_token, query)
	return result


## Trade the refresh token for a new pair (done by itself when due).
func refresh() -> HomeportResult:
	var result := await http.request("auth.refresh", {}, {"refresh_token": _refresh_token})
	if result.ok:
		return _started(result)
	if not result.is_retryable():
		_forget(result.error_type)
	return result


## Restore the session saved on this device, if any; true when one was found.
func restore_session() -> bool:
	if not FileAccess.file_exists(_session_file):
		return false
	var file := FileAccess.open_encrypted_with_pass(_session_file, FileAccess.READ, _device_key())
	if file == null:
		return false
	var saved: Variant = JSON.parse_string(file.get_as_text())
	file.close()
	if not saved is Dictionary:
		return false
	var session: Dictionary = saved
	_refresh_token = str(session.get("refresh_token", ""))
	_access_token = str(session.get("access_token", ""))
	var expires: float = session.get("access_expires_at", 0.0)
	_access_expires_at = expires
	player = session.get("player", {})
	if _refresh_token != "":
		session_changed.emit(player)
	return _refresh_token != ""


func _started(result: HomeportResult) -> HomeportResult:
	if not result.ok or not result.data is Dictionary:
		return result
	var pair: Dictionary = result.data
	_access_token = str(pair.get("access_token", ""))
	_refresh_token = str(pair.get("refresh_token", ""))
	var lifetime: float = pair.get("expires_in", 0.0)
	_access_expires_at = Time.get_unix_time_from_system() + lifetime
	player = pair.get("player", {})
	_save_session()
	session_changed.emit(player)
	return result


func _save_session() -> void:
	var file := FileAccess.open_encrypted_with_pass(_session_file, FileAccess.WRITE, _device_key())
	if file == null:
		push_warning("Homeport: cannot save the session to %s" % _session_file)
		return
	var session := {
		"refresh_token": _refresh_token,
		"access_token": _access_token,
		"access_expires_at": _access_expires_at,
		"player": player,
	}
	file.store_string(JSON.stringify(session))
	file.close()


func _forget(reason: String) -> void:
	_access_token = ""
	_refresh_token = ""
	_access_expires_at = 0.0
	player = {}
	if FileAccess.file_exists(_session_file):
		DirAccess.remove_absolute(ProjectSettings.globalize_path(_session_file))
	session_ended.emit(reason)


static func _device_key() -> String:
	return ("homeport-session-" + OS.get_unique_id()).sha256_text()
