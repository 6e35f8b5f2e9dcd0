"""The sans-I/O protocol core: no sockets, no event loop, no clock."""
