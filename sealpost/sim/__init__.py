"""``sealpost sim``: a simulated week of business messaging on real clients and a real relay.

``runner.run_sim(config.SimOptions(...))`` plays it, ``summary.summarize`` and
``summary.render`` report it, ``sweep.run_sweep`` measures estimation error over a grid of
epsilons and audience sizes. Nothing is imported here: the CLI reads ``config`` to build its
parser, and the relay and client code load only when a run starts.
"""
