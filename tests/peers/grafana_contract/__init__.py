"""Contract test kit for Grafana's annotation API: a validating loopback server and its fixture."""
