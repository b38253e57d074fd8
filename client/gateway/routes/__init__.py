"""The gateway's HTTP routes, one module per Cloud API resource."""
