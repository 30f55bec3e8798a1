"""``python -m jaxsim.cli``: the ``jaxsim`` command."""

import sys

from jaxsim.cli.app import main

sys.exit(main())
