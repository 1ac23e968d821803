"""mt: RNN encoder-decoder machine translation with pluggable, measured attention.

Data flows data -> models -> search -> evaluation -> training -> report, with cli/ on top;
see docs/architecture.md for the map and how to add a mechanism, a data source or a command.
"""
