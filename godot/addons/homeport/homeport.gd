class_name HomeportAutoload
extends Node
## The `Homeport` autoload: `Homeport.client` on players' devices, `Homeport.server` in a
## dedicated server (configured from its environment), both reading the `homeport/*` project
## settings.

## The game client's half.
var client: HomeportClient
## The dedicated server's half (also present on clients, unused there).
var server: HomeportServer


func _ready() -> void:
	client = HomeportClient.new(_transport())
	client.name = "Client"
	add_child(client)
	server = HomeportServer.new(_transport())
	server.name = "Server"
	add_child(server)
	if HomeportServer.is_server_mode():
		server.configure_from_environment()
	else:
		client.restore_session()


static func _transport() -> HomeportHttp:
	var http := HomeportHttp.new()
	http.base_url = str(ProjectSettings.get_setting("homeport/url", http.base_url)).trim_suffix("/")
	var timeout: float = ProjectSettings.get_setting("homeport/timeout_seconds", http.timeout)
	http.timeout = timeout
	var unsafe_tls: bool = ProjectSettings.get_setting("homeport/allow_self_signed_tls", false)
	http.allow_self_signed_tls = unsafe_tls
	return http
