"""Lua routing scripts (package data, loaded by queueing.store)."""
