"""`python -m fmnist` runs the command line."""

from fmnist.cli import main

main()
