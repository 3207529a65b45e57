"""Task collections behind `tasks.py`, one module per concern (see docs/contract.md)."""
