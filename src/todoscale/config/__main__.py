"""`python -m todoscale.config README.md`: render the README's configuration table."""

import sys

from todoscale.config.table import main

main(sys.argv[1:])
