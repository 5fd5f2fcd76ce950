"""The Lua scripts the benchmarks give `wrk`: requests cycled from a list, and a count of every
answer that was not a 200, reported when the run ends."""

from __future__ import annotations


def lua_string(value: str) -> str:
    escaped = value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'"{escaped}"'


def wrk_lua(
    prelude: str,
    entries: list[str],
    request: str,
    *,
    build: str | None = None,
    on_response: str = "",
    threads: int = 1,
) -> str:
    """Lua for wrk that cycles through `entries` (Lua expressions), each thread from its own
    offset so the threads do not send the same request at once. `request` is a Lua expression
    of `entry` giving the raw request (`wrk.format(...)`); each is rendered once, in `init`,
    so the harness costs wrk nothing per request. `prelude` sets wrk's method and headers.

    For requests that depend on earlier answers (a version to send back), `build` is a Lua
    expression of `entry` evaluated per request instead, over this thread's share of the
    entries only (so no two threads touch one entry), and `on_response` is Lua run on every
    answer with `status`, `headers` and `body` in scope. `threads` is wrk's `-t`: the shares
    are fixed before any thread starts."""
    listed = ",\n".join("  " + entry for entry in entries)
    if build is None:
        prepare = f"prepared[i] = {request}"
        send = "return prepared[counter]"
        start = "counter = ((thread_index or 1) - 1) * math.floor(#prepared / 2)"
        share = "true"
    else:
        prepare = "prepared[#prepared + 1] = entry"
        send = f"local entry = prepared[counter]\n  return {build}"
        start = "counter = 0"
        share = f"(i - 1) % {threads} == (thread_index or 1) - 1"
    return f"""\
{prelude}

local entries = {{
{listed}
}}

local threads = {{}}
local thread_count = 0

function setup(thread)
  thread_count = thread_count + 1
  thread:set("thread_index", thread_count)
  table.insert(threads, thread)
end

local prepared = {{}}
local counter = 0
non200 = 0
sample_status = 0
sample_body = ""

function init(args)
  for i, entry in ipairs(entries) do
    if {share} then
      {prepare}
    end
  end
  {start}
end

function request()
  counter = counter % #prepared + 1
  {send}
end

function response(status, headers, body)
  {on_response}
  if status ~= 200 then
    non200 = non200 + 1
    if sample_status == 0 then
      sample_status = status
      sample_body = body or ""
    end
  end
end

function done(summary, latency, requests)
  local total = 0
  local status = 0
  local body = ""
  for _, thread in ipairs(threads) do
    total = total + (thread:get("non200") or 0)
    local s = thread:get("sample_status") or 0
    if status == 0 and s ~= 0 then
      status = s
      body = thread:get("sample_body") or ""
    end
  end
  io.write(string.format("bench-non200: %d\\n", total))
  if status ~= 0 then
    io.write(string.format("bench-sample-status: %d\\n", status))
    io.write("bench-sample-body: " .. string.gsub(body, "\\n", " ") .. "\\n")
  end
end
"""
