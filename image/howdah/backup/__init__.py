"""Backups beyond taking them: restore drills that prove a backup can be restored."""
