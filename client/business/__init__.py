"""The business console: templates, audiences, campaigns and budgets, on the business's device.

The audience (names, handles, codes) never leaves this machine in clear: each copy is
personalised and sealed here, and the relay sees only envelopes and counts.
"""
