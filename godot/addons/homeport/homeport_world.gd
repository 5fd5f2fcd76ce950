class_name HomeportWorld
extends Node
## A dedicated server's world, saved to Homeport as binary chunks: only the chunks that changed
## since the last save are uploaded, a save becomes the latest only once complete, and a copy of
## the last save is kept on this machine's disk, loaded when Homeport cannot be reached.
##
## Chunk ids are the game's ("12,-3", "terrain/4"); bytes are PackedByteArray. The server takes
## the world's write lease before loading, so no other server saves after what it loaded.

## A save reached Homeport as snapshot `seq`.
signal saved(seq: int)
## A save failed; it is kept and sent with the next one.
signal save_failed(result: HomeportResult)

var http: HomeportHttp
var server_key: String = ""
## The world's name in Homeport.
var world: String = ""
## The last snapshot this server saved or loaded, 0 before any.
var base: int = 0
var _chunks: Dictionary = {}
var _dirty: Dictionary = {}
var _saved: Dictionary = {}
var _saving: bool = false
var _autosave: Timer
var _backup_dir: String = ""


func _init(transport: HomeportHttp, key: String, world_name: String) -> void:
	http = transport
	server_key = key
	world = world_name
	_backup_dir = "user://homeport_worlds/%s" % world_name.uri_encode()


func _ready() -> void:
	if http.get_parent() == null:
		add_child(http)


## Take the write lease (waiting up to `lease_wait` seconds while a predecessor holds it), then
## load the latest save from Homeport, or the local backup when Homeport cannot be reached.
## `data` is "new", "homeport" or "backup".
func load_world(lease_wait: float = 45.0) -> HomeportResult:
	var lease := await _take_lease(lease_wait)
	if not lease.ok:
		return _from_backup(lease) if lease.is_retryable() else lease
	var detail := await _call("worlds.get")
	if detail.is_retryable():
		return _from_backup(detail)
	if not detail.ok and detail.error_type != "world-not-found":
		return detail
	var answer: Dictionary = detail.data if detail.ok else {}
	var latest: Variant = answer.get("latest")
	if not latest is Dictionary:
		return HomeportResult.success(200, "new", {})
	var snapshot: Dictionary = latest
	return await _download(snapshot)


func _take_lease(wait: float) -> HomeportResult:
	var deadline := Time.get_ticks_msec() + int(wait * 1000.0)
	var lease := await _call("worlds.lease")
	while lease.error_type == "world-leased" and Time.get_ticks_msec() < deadline:
		await get_tree().create_timer(1.0).timeout
		lease = await _call("worlds.lease")
	return lease


func _download(snapshot: Dictionary) -> HomeportResult:
	var manifest: Dictionary = snapshot.get("manifest", {})
	var loaded := {}
	for chunk_id: String in manifest:
		var digest: String = manifest[chunk_id]
		var params := {"world": world, "sha256": digest}
		var got := await http.request("worlds.download", params, null, server_key)
		if not got.ok:
			return _from_backup(got) if got.is_retryable() else got
		var bytes: PackedByteArray = got.data
		if sha256(bytes) != digest:
			var why := "chunk %s came back with other bytes" % chunk_id
			return HomeportResult.failure(0, "corrupt-chunk", why)
		loaded[chunk_id] = bytes
	_chunks = loaded
	_saved = loaded.duplicate()
	_dirty.clear()
	var seq: int = snapshot.get("seq", 0)
	base = seq
	return HomeportResult.success(200, "homeport", {})


## The chunk's bytes (empty when the world has no such chunk).
func get_chunk(chunk_id: String) -> PackedByteArray:
	return _chunks.get(chunk_id, PackedByteArray())


## All chunk ids.
func chunk_ids() -> Array:
	return _chunks.keys()


## Change a chunk; it is sent with the next save.
func set_chunk(chunk_id: String, bytes: PackedByteArray) -> void:
	_chunks[chunk_id] = bytes
	_dirty[chunk_id] = true


## Save every `interval` seconds (0 stops it).
func autosave(interval: float) -> void:
	if _autosave == null:
		_autosave = Timer.new()
		_autosave.timeout.connect(func() -> void: await save())
		add_child(_autosave)
	if interval <= 0.0:
		_autosave.stop()
	else:
		_autosave.start(interval)


## Send what changed: ask which chunks Homeport lacks, upload those, commit. On a lost answer
## (the latest moved past `base`) the whole world is sent on top of the new latest.
func save() -> HomeportResult:
	if _saving:
		return HomeportResult.failure(0, "save-in-progress", "a save is running")
	if _dirty.is_empty() and base > 0:
		return HomeportResult.success(200, {"seq": base}, {})
	_saving = true
	var changed: Array = _dirty.keys() if base > 0 else _chunks.keys()
	var taken := {}
	for chunk_id: String in changed:
		taken[chunk_id] = _chunks[chunk_id]
	_dirty.clear()
	var result := await _send(taken, base, base == 0)
	if result.error_type == "snapshot-conflict":
		var latest: int = result.problem.get("latest", 0)
		taken = _chunks.duplicate()
		result = await _send(taken, latest, true)
	_saving = false
	if not result.ok:
		for chunk_id: String in changed:
			_dirty[chunk_id] = true
		save_failed.emit(result)
		return result
	var answer: Dictionary = result.data
	var seq: int = answer.get("seq", 0)
	base = seq
	for chunk_id: String in taken:
		_saved[chunk_id] = taken[chunk_id]
	_write_backup()
	saved.emit(seq)
	return result


## Give the lease back (after the last save, when shutting down).
func release() -> HomeportResult:
	return await _call("worlds.release")


static func sha256(bytes: PackedByteArray) -> String:
	var context := HashingContext.new()
	context.start(HashingContext.HASH_SHA256)
	context.update(bytes)
	return context.finish().hex_encode()


func _send(taken: Dictionary, on: int, whole: bool) -> HomeportResult:
	var hashes := {}
	for chunk_id: String in taken:
		var bytes: PackedByteArray = taken[chunk_id]
		hashes[chunk_id] = sha256(bytes)
	var asked := await _call("worlds.missing", {"hashes": hashes.values()})
	if not asked.ok:
		return asked
	var answer: Dictionary = asked.data
	var missing: Array = answer.get("missing", [])
	for chunk_id: String in taken:
		var digest: String = hashes[chunk_id]
		if missing.has(digest):
			var chunk: PackedByteArray = taken[chunk_id]
			var params := {"world": world, "sha256": digest}
			var stored := await http.request("worlds.upload", params, chunk, server_key)
			if not stored.ok:
				return stored
			missing.erase(digest)
	var body := {"manifest": hashes} if whole else {"changes": hashes}
	if on > 0:
		body["base"] = on
	return await _call("worlds.commit", body)


func _call(operation: String, body: Variant = null) -> HomeportResult:
	return await http.request(operation, {"world": world}, body, server_key)


func _write_backup() -> void:
	var directory := ProjectSettings.globalize_path(_backup_dir)
	DirAccess.make_dir_recursive_absolute(directory)
	var temporary := directory + "/world.tmp"
	var file := FileAccess.open(temporary, FileAccess.WRITE)
	if file == null:
		push_warning("Homeport: cannot write the world backup in %s" % _backup_dir)
		return
	file.store_var({"base": base, "chunks": _saved}, false)
	file.close()
	DirAccess.rename_absolute(temporary, directory + "/world.bin")


func _from_backup(why: HomeportResult) -> HomeportResult:
	var path := _backup_dir + "/world.bin"
	if not FileAccess.file_exists(path):
		return why
	var file := FileAccess.open(path, FileAccess.READ)
	var content: Variant = file.get_var(false)
	file.close()
	if not content is Dictionary:
		return why
	var backup: Dictionary = content
	var chunks: Dictionary = backup.get("chunks", {})
	var seq: int = backup.get("base", 0)
	_chunks = chunks.duplicate()
	_saved = chunks.duplicate()
	base = seq
	push_warning("Homeport unreachable (%s): loaded the world from the local backup" % why)
	return HomeportResult.success(200, "backup", {})
