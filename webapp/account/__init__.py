"""My account: ``views`` (overview, names, password, data, deletion), ``security``
(two-factor sign-in, signed-in browsers) and ``trash`` (my deleted items and posts), all on
``views.bp``; importing the package imports them all, so ``bp`` always has every route."""

from webapp.account import security, trash, views

__all__ = ["security", "trash", "views"]
