"""My account: its pages (``views``, which holds ``bp``) and my trash (``trash``); importing
the package imports both, so ``bp`` always has every route."""

from webapp.account import trash, views

__all__ = ["trash", "views"]
