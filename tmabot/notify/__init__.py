"""Outgoing messages: email (monthly reports); Slack comes next."""
