"""The plain agent page (package data, served by queueing.agent_api)."""
