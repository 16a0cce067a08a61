"""Adapters to other libraries, each imported only on request (their libraries stay optional)."""
