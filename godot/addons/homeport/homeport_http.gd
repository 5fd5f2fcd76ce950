class_name HomeportHttp
extends Node
## Homeport's HTTP API as awaitable calls that always end: one HTTPRequest node per call, a
## timeout on every request (Godot's default is none), JSON declared as such (Godot sends no
## Content-Type of its own), problem+json turned into a HomeportResult.

## Base URL, e.g. "https://backend.example.com".
var base_url: String = "http://127.0.0.1:8080"
## Seconds a call may take in all, connection included.
var timeout: float = 10.0
## Accept self-signed certificates (development only).
var allow_self_signed_tls: bool = false


## A JSON call; `body` null sends no body. `bearer` is an access token or a server key.
func call_json(
	method: String,
	path: String,
	body: Variant = null,
	bearer: String = "",
	extra: PackedStringArray = PackedStringArray()
) -> HomeportResult:
	var headers := PackedStringArray(["Accept: application/json"])
	headers.append_array(extra)
	if bearer != "":
		headers.append("Authorization: Bearer " + bearer)
	var payload := PackedByteArray()
	if body != null:
		headers.append("Content-Type: application/json")
		payload = JSON.stringify(body).to_utf8_buffer()
	return await _send(method, path, headers, payload, body != null, false)


## A call with raw bytes (a world chunk); the answer's `data` is JSON for uploads and the raw
## bytes for downloads (`binary_answer`).
func call_bytes(
	method: String, path: String, payload: PackedByteArray, bearer: String, binary_answer: bool
) -> HomeportResult:
	var headers := PackedStringArray(["Authorization: Bearer " + bearer])
	var has_body := method == "PUT" or method == "POST"
	if has_body:
		headers.append("Content-Type: application/octet-stream")
	return await _send(method, path, headers, payload, has_body, binary_answer)


func _send(
	method: String,
	path: String,
	headers: PackedStringArray,
	payload: PackedByteArray,
	has_body: bool,
	binary_answer: bool
) -> HomeportResult:
	var request := HTTPRequest.new()
	request.timeout = timeout
	request.use_threads = false
	if base_url.begins_with("https://"):
		request.set_tls_options(
			TLSOptions.client_unsafe() if allow_self_signed_tls else TLSOptions.client()
		)
	add_child(request)
	var error: Error
	if has_body:
		error = request.request_raw(base_url + path, headers, _method(method), payload)
	else:
		error = request.request(base_url + path, headers, _method(method))
	if error != OK:
		request.queue_free()
		return HomeportResult.failure(
			0, "network", "could not start the request: %s" % error_string(error)
		)
	var answer: Array = await request.request_completed
	request.queue_free()
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
