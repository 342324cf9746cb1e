"""tmabot: application-maintenance (TMA) bot for web agencies."""

__version__ = "0.1.0"
