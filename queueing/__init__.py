"""Queues, agents, routing, estimated wait, service-level statistics and Erlang C staffing."""
