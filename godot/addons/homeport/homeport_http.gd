class_name HomeportHttp
extends Node
## Homeport's HTTP API as awaitable calls that always end: one HTTPRequest node per call, a
## timeout on every request (Godot's default is none), JSON declared as such (Godot sends no
## Content-Type of its own), problem+json turned into a HomeportResult.

## The request table (`contract.json` beside this script): every request the addon can make.
const CONTRACT: JSON = preload("contract.json")

## Base URL, e.g. "https://backend.example.com".
var base_url: String = "http://127.0.0.1:8080"
## Seconds a call may take in all, connection included.
var timeout: float = 10.0
## Accept self-signed certificates (development only).
var allow_self_signed_tls: bool = false
## Which section of the table this transport makes requests of: "operations" (Homeport) or
## "agones" (the Agones SDK sidecar).
var table: String = "operations"
var _streams_closed: int = 0


## Make request `operation` of the table: `params` fill the path's {names}, `body` is the JSON
## body (a Dictionary) or an upload's bytes, `credential` the access token or server key, `query`
## the query parameters. A request the table does not allow is not sent: its result is a
## `contract` failure (a bug in the caller, also pushed as an error).
func request(
	operation: String,
	params: Dictionary = {},
	body: Variant = null,
	credential: String = "",
	query: Dictionary = {}
) -> HomeportResult:
	var built := prepare(operation, params, body, credential, query)
	if not built.ok:
		return built
	var spec: Dictionary = built.data
	var payload := PackedByteArray()
	if body is PackedByteArray:
		payload = body
	elif body != null:
		payload = JSON.stringify(body).to_utf8_buffer()
	var method: String = spec["method"]
	var url: String = spec["url"]
	var headers: PackedStringArray = spec["headers"]
	var binary: bool = spec["binary"]
	return await _send(method, url, headers, payload, body != null, binary)


## Check a request against the table and build it: `data` holds its `method`, `url`, `headers`
## and whether the answer is `binary` (the WebSocket opens its URL this way too).
func prepare(
	operation: String,
	params: Dictionary = {},
	body: Variant = null,
	credential: String = "",
	query: Dictionary = {}
) -> HomeportResult:
	var operations: Dictionary = CONTRACT.data.get(table, {})
	if not operations.has(operation):
		return _refused("no request %s in the table" % operation)
	var spec: Dictionary = operations[operation]
	var path: String = spec["path"]
	for name: String in params:
		var slot := "{%s}" % name
		if not path.contains(slot):
			return _refused("%s has no path parameter %s" % [operation, name])
		path = path.replace(slot, str(params[name]).uri_encode())
	if path.contains("{"):
		return _refused("%s needs its path parameters: %s" % [operation, path])
	var allowed: Array = spec.get("query", [])
	for name: String in query:
		if not allowed.has(name):
			return _refused("%s takes no query parameter %s" % [operation, name])
	var problem := _body_problem(operation, spec.get("body"), body)
	if problem != "":
		return _refused(problem)
	var headers := PackedStringArray()
	var fields: Dictionary = spec["headers"]
	for name: String in fields:
		var value: String = fields[name]
		if value.contains("{"):
			if credential == "":
				continue
			value = value.replace("{access_token}", credential).replace("{server_key}", credential)
		headers.append("%s: %s" % [name, value])
	var built := {
		"method": spec["method"],
		"url": base_url + path + _query(query),
		"headers": headers,
		"binary": spec.get("answer", "json") == "bytes",
	}
	return HomeportResult.success(0, built, {})


## Make a streaming request of the table (the Agones watch): `on_message` gets each JSON line
## of the answer as it arrives, until the answer ends, the connection drops or `close_streams()`
## is called. Connecting and the answer's start have the usual timeout; the stream has none.
func stream(operation: String, on_message: Callable, params: Dictionary = {}) -> HomeportResult:
	var built := prepare(operation, params)
	if not built.ok:
		return built
	var spec: Dictionary = built.data
	var url: String = spec["url"]
	var secure := url.begins_with("https://")
	var rest := url.trim_prefix("https://").trim_prefix("http://")
	var slash := rest.find("/")
	var authority := rest.substr(0, slash)
	var host := authority.get_slice(":", 0)
	var port := authority.get_slice(":", 1).to_int() if authority.contains(":") else -1
	var client := HTTPClient.new()
	var tls: TLSOptions = null
	if secure:
		tls = TLSOptions.client_unsafe() if allow_self_signed_tls else TLSOptions.client()
	if client.connect_to_host(host, port, tls) != OK:
		return HomeportResult.failure(0, "network", "could not connect to %s" % authority)
	var generation := _streams_closed
	var deadline := Time.get_ticks_msec() + int(timeout * 1000.0)
	var waiting := [HTTPClient.STATUS_RESOLVING, HTTPClient.STATUS_CONNECTING]
	while client.get_status() in waiting and Time.get_ticks_msec() < deadline:
		client.poll()
		await get_tree().process_frame
	if client.get_status() != HTTPClient.STATUS_CONNECTED:
		client.close()
		return HomeportResult.failure(0, "network", "could not connect to %s" % authority)
	var method: String = spec["method"]
	var headers: PackedStringArray = spec["headers"]
	client.request(_method(method), rest.substr(slash), headers)
	while client.get_status() == HTTPClient.STATUS_REQUESTING:
		client.poll()
		if Time.get_ticks_msec() > deadline:
			client.close()
			return HomeportResult.failure(0, "network", "timed out")
		await get_tree().process_frame
	var code := client.get_response_code()
	if not client.has_response() or code < 200 or code >= 300:
		client.close()
		return HomeportResult.failure(code, "http-%d" % code, "the stream was refused")
	var pending := PackedByteArray()
	while client.get_status() == HTTPClient.STATUS_BODY and generation == _streams_closed:
		client.poll()
		var chunk := client.read_response_body_chunk()
		if chunk.is_empty():
			await get_tree().process_frame
			continue
		pending.append_array(chunk)
		var newline := pending.find(10)
		while newline >= 0:
			var line := pending.slice(0, newline).get_string_from_utf8().strip_edges()
			pending = pending.slice(newline + 1)
			var parsed: Variant = JSON.parse_string(line) if line != "" else null
			if parsed != null:
				on_message.call(parsed)
			newline = pending.find(10)
	client.close()
	return HomeportResult.success(200, "ended", {})


## End every open stream of this transport.
func close_streams() -> void:
	_streams_closed += 1


static func _body_problem(operation: String, fields: Variant, body: Variant) -> String:
	if fields == null:
		return "" if body == null else "%s takes no body" % operation
	if fields is String:
		return "" if body is PackedByteArray else "%s takes bytes" % operation
	var declared: Dictionary = fields
	if body == null:
		return "" if not declared.values().has("required") else "%s needs a body" % operation
	if not body is Dictionary:
		return "%s takes a JSON object" % operation
	var given: Dictionary = body
	for name: String in given:
		if not declared.has(name):
			return "%s has no field %s" % [operation, name]
	for name: String in declared:
		if declared[name] == "required" and not given.has(name):
			return "%s needs the field %s" % [operation, name]
	return ""


static func _refused(why: String) -> HomeportResult:
	push_error("Homeport: " + why)
	return HomeportResult.failure(0, "contract", why)


static func _query(values: Dictionary) -> String:
	var parts := PackedStringArray()
	for name: String in values:
		var value: Variant = values[name]
		var items: Array = value if value is Array else [value]
		for item: Variant in items:
			parts.append("%s=%s" % [name.uri_encode(), str(item).uri_encode()])
	return "" if parts.is_empty() else "?" + "&".join(parts)


func _send(
	method: String,
	url: String,
	headers: PackedStringArray,
	payload: PackedByteArray,
	has_body: bool,
	binary_answer: bool
) -> HomeportResult:
	var node := HTTPRequest.new()
	node.timeout = timeout
	node.use_threads = false
	if base_url.begins_with("https://"):
		node.set_tls_options(
			TLSOptions.client_unsafe() if allow_self_signed_tls else TLSOptions.client()
		)
	add_child(node)
	var error: Error
	if has_body:
		error = node.request_raw(url, headers, _method(method), payload)
	else:
		error = node.request(url, headers, _method(method))
	if error != OK:
		node.queue_free()
		return HomeportResult.failure(
			0, "network", "could not start the request: %s" % error_string(error)
		)
	var answer: Array = await node.request_completed
	node.queue_free()
	return _result(answer, binary_answer)


static func _method(name: String) -> HTTPClient.Method:
	match name:
		"POST":
			return HTTPClient.METHOD_POST
		"PUT":
			return HTTPClient.METHOD_PUT
		"PATCH":
			return HTTPClient.METHOD_PATCH
		"DELETE":
			return HTTPClient.METHOD_DELETE
		"HEAD":
			return HTTPClient.METHOD_HEAD
	return HTTPClient.METHOD_GET


static func _result(answer: Array, binary_answer: bool) -> HomeportResult:
	var outcome: int = answer[0]
	var code: int = answer[1]
	var body: PackedByteArray = answer[3]
	if outcome != HTTPRequest.RESULT_SUCCESS:
		var why := (
			"timed out"
			if outcome == HTTPRequest.RESULT_TIMEOUT
			else "request failed (%d)" % outcome
		)
		return HomeportResult.failure(0, "network", why)
	var headers := {}
	for line: String in answer[2]:
		var colon := line.find(":")
		if colon > 0:
			headers[line.substr(0, colon).strip_edges().to_lower()] = (
				line.substr(colon + 1).strip_edges()
			)
	var parsed: Variant = null
	var content_type: String = headers.get("content-type", "")
	var is_json := content_type.contains("json")
	if is_json and body.size() > 0:
		parsed = JSON.parse_string(body.get_string_from_utf8())
	if code >= 200 and code < 300:
		return HomeportResult.success(code, body if binary_answer else parsed, headers)
	if parsed is Dictionary:
		var document: Dictionary = parsed
		var kind: String = str(document.get("type", "")).trim_prefix(HomeportResult.PROBLEM_PREFIX)
		var detail: String = str(document.get("detail", ""))
		var result := HomeportResult.failure(
			code, kind if kind != "" else "http-%d" % code, detail, document
		)
		result.headers = headers
		return result
	return HomeportResult.failure(code, "http-%d" % code, body.get_string_from_utf8().left(200))
