"""Durable outbound calls: surveys, care follow-ups, complaint follow-ups, queue callbacks.

Layers, imported one way: `phone`, `windows`, `retry` (pure) -> `jobs` (data and the
transition table) -> `store` (Redis + Lua) -> `scheduler` (the loop, `Dialer` protocol)
-> `service` (surveys, cases, follow-ups) -> `api` (aiohttp routes).
"""
