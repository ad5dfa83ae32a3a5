"""drlaas-envserver: serves Gymnasium and PettingZoo environments to the drlaas trainer.

The wire format is docs/env-protocol.md of the drlaas repository; this package is its reference server
(and, in `client`, a reference client).
"""

__version__ = "0.1.0"

# Sent in SPACES so that a trainer's error report can say which server it talked to.
SERVER_NAME = f"drlaas-envserver {__version__}"
