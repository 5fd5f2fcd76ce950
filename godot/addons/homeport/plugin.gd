@tool
extends EditorPlugin
## Adds the `Homeport` autoload and the project settings it reads.

const AUTOLOAD := "Homeport"
const SETTINGS := {
	"homeport/url": ["http://127.0.0.1:8080", TYPE_STRING],
	"homeport/timeout_seconds": [10.0, TYPE_FLOAT],
	"homeport/allow_self_signed_tls": [false, TYPE_BOOL],
}


func _enter_tree() -> void:
	add_autoload_singleton(AUTOLOAD, "res://addons/homeport/homeport.gd")
	for setting: String in SETTINGS:
		if not ProjectSettings.has_setting(setting):
			ProjectSettings.set_setting(setting, SETTINGS[setting][0])
		ProjectSettings.set_initial_value(setting, SETTINGS[setting][0])
		ProjectSettings.add_property_info({"name": setting, "type": SETTINGS[setting][1]})
	ProjectSettings.save()


func _exit_tree() -> void:
	remove_autoload_singleton(AUTOLOAD)
