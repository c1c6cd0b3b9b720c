"""The admin console: one blueprint (``views.bp``), its pages split by what they manage.

Importing the package imports every module that adds pages to ``bp`` (each imports ``bp``
from ``views``), so the blueprint registered is always the whole console.
"""

from webapp.admin import content, history, imports, lists, mail, tags, trash, users

__all__ = ["content", "history", "imports", "lists", "mail", "tags", "trash", "users"]
