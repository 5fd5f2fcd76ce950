class_name HomeportResult
extends RefCounted
## What every Homeport call gives back: never an exception, never a hang.
##
## `ok` is true for a 2xx answer. Otherwise `error_type` is the problem type without its
## `urn:homeport:problem:` prefix (`version-conflict`, `world-leased`, ...), or `network` when no
## answer came (timeout, refused connection, TLS failure).

const PROBLEM_PREFIX := "urn:homeport:problem:"

## True for a 2xx answer.
var ok: bool = false
## The HTTP status, 0 when no answer came.
var status: int = 0
## The parsed JSON answer (a Dictionary for most calls), or the raw bytes of a binary answer.
var data: Variant = null
## The problem type (`token-expired`, ...), `network` without an answer, "" when ok.
var error_type: String = ""
## The problem's human-readable detail.
var error_detail: String = ""
## The whole problem document (extra members such as `current_version` live here).
var problem: Dictionary = {}
## Response headers, names in lower case.
var headers: Dictionary = {}


static func success(code: int, body: Variant, response_headers: Dictionary) -> HomeportResult:
	var result := HomeportResult.new()
	result.ok = true
	result.status = code
	result.data = body
	result.headers = response_headers
	return result


static func failure(
	code: int, kind: String, detail: String, document: Dictionary = {}
) -> HomeportResult:
	var result := HomeportResult.new()
	result.status = code
	result.error_type = kind
	result.error_detail = detail
	result.problem = document
	return result


## True when retrying the same call later may work: no answer, a 5xx, or 429.
func is_retryable() -> bool:
	return not ok and (status == 0 or status >= 500 or status == 429)


func _to_string() -> String:
	if ok:
		return "HomeportResult(%d)" % status
	return "HomeportResult(%d %s: %s)" % [status, error_type, error_detail]
