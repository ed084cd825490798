"""Typed settings and the YAML definitions of menus, queues, agents, surveys and calendars."""
