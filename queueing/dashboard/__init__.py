"""The supervisors' wallboard and sign-in page (package data, served by queueing.supervisor_api)."""
