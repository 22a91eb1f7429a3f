"""Entry point for `python -m gateway.emulator`."""

import sys

from gateway.emulator.cli import main

sys.exit(main())
