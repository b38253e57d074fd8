"""The shuffler: a separately operated process between devices and the relay's aggregator.

Devices post each anonymous report to it alone; it keeps reports without their arrival time
or address, and once it holds at least B from distinct tokens it forwards them to the relay
in one shuffled batch signed with its own key. It sees when a report arrives but learns
nothing the relay could not; the relay reads reports but never sees when or from where one
arrived. The two must not collude (docs/deploy.md says what breaks if they do).

Modules: :mod:`shuffler.settings`, :mod:`shuffler.keys`, :mod:`shuffler.store`,
:mod:`shuffler.forward`, :mod:`shuffler.app`, :mod:`shuffler.embedded`. It imports ``shared``
only, never ``server`` or ``client``.
"""
