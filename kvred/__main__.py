"""`python -m kvred` is the `kvred` command."""

import sys

from .cli import main

sys.exit(main())
