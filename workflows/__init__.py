"""Temporal workflows. One: `AuthorityRequest`, one run per authority request."""

from workflows.authority_request import AuthorityRequest

__all__ = ["AuthorityRequest"]
