"""Outgoing messages: email (monthly reports) and Slack (nudges, digests, report posts).

Their errors live here so that the CLI can catch them without importing slack_sdk or the
email machinery at start-up."""


class SlackError(Exception):
    """A Slack call failed for good: one clear line."""


class EmailError(Exception):
    """Sending failed: one clear line, no secret."""
