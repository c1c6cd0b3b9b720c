from __future__ import annotations

from sqlalchemy import or_, select

from webapp.models import Item
from webapp.repositories.base import Page, contains
from webapp.repositories.versioned import VersionedRepository


class ItemRepository(VersionedRepository[Item]):
    model = Item
    default_order = (Item.created_at.desc(), Item.id.desc())

    def get_for_owner(self, item_id: int, owner_id: int) -> Item | None:
        """The item, only if ``owner_id`` owns it (anyone else gets ``None``, hence a 404)."""
        return self.session.scalar(
            select(Item).where(Item.id == item_id, Item.owner_id == owner_id)
        )

    def for_owner(
        self, owner_id: int, *, q: str = "", page: int | None = 1, per_page: int | None = None
    ) -> Page[Item]:
        """An owner's items, newest first; ``q`` searches title and description.

        Nothing related is shown per row (the owner is the viewer), so nothing is eager-loaded.
        """
        filters = [Item.owner_id == owner_id]
        if q:
            filters.append(or_(contains(Item.title, q), contains(Item.description, q)))
        return self.list(filters=filters, page=page, per_page=per_page)

    def create_for(self, owner_id: int, *, title: str, description: str | None) -> Item:
        return self.create(owner_id=owner_id, title=title, description=description or None)
