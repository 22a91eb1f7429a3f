"""Entry point for `python -m ci_emulator`."""

import sys

from ci_emulator.cli import main

sys.exit(main())
