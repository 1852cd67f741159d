"""`python -m aftercal.cli`, the same as the `aftercal` command."""

from aftercal.cli import main

main()
