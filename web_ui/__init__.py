"""The kiosk's local web UI: server-rendered pages and a JSON API over the agent's services."""
