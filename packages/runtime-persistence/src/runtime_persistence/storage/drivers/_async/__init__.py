"""The server drivers' I/O, written once as async code; ``../_sync/`` holds the generated twins."""
