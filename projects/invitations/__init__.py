"""Invitations: a lab asks the best experts of a past project to its next one."""
