"""``python -m intrain`` (and ``torchrun -m intrain``)."""

import sys

from .cli import main

sys.exit(main())
