"""My account: ``views`` (overview, names, password, data, deletion) and ``security``
(two-factor sign-in, signed-in browsers), both on ``views.bp``."""

from webapp.account import security, views

__all__ = ["security", "views"]
