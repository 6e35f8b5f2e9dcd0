"""lanpay: a payment ledger between two people on one LAN.

The protocol lives in :mod:`lanpay.core` (sans-I/O: feed it datagrams and the
time, send what it returns); :mod:`lanpay.node` runs it on asyncio sockets and
:mod:`lanpay.cli` is the ``lanpay`` command.
"""

__version__ = "0.1.0"

__all__ = ["__version__"]
