"""`python -m gateway` is `ci-gateway`."""

import sys

from gateway.cli import main

sys.exit(main())
