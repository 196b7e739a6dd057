"""`python -m bioseq ...` is the same as the `bioseq` command."""

import sys

from .cli import main

sys.exit(main())
