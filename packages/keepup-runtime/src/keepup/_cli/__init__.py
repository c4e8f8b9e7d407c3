"""The ``keepup`` command line, one private module per command group (see :mod:`keepup.cli`)."""
