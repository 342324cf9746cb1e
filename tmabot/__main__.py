"""`python -m tmabot`."""

from tmabot.cli import run

run()
