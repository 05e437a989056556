"""`python -m manygil bench|compat`."""

import sys

from .cli import main

sys.exit(main())
