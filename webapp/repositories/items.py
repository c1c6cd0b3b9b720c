from __future__ import annotations

from typing import Any

from sqlalchemy import Row, bindparam, or_, select

from webapp.models import Item
from webapp.repositories.base import Page, contains
from webapp.repositories.versioned import VersionedRepository

# What the list of my items shows of each (plain rows: no ORM objects for a list).
ITEM_CARD: tuple[Any, ...] = (
    Item.id,
    Item.title,
    Item.description,
    Item.created_at,
    Item.updated_at,
    Item.version,
)


NEWEST_FIRST = (Item.created_at.desc(), Item.id.desc())
# An owner's items, newest first: built once, the owner a bound parameter.
_OWNERS_ITEMS = (
    select(*ITEM_CARD).where(Item.owner_id == bindparam("owner_id")).order_by(*NEWEST_FIRST)
)


class ItemRepository(VersionedRepository[Item]):
    model = Item
    default_order = NEWEST_FIRST

    def get_for_owner(self, item_id: int, owner_id: int) -> Item | None:
        """The item, only if ``owner_id`` owns it (anyone else gets ``None``, hence a 404)."""
        return self.session.scalar(
            select(Item).where(Item.id == item_id, Item.owner_id == owner_id)
        )

    def for_owner(
        self, owner_id: int, *, q: str = "", page: int | None = 1, per_page: int | None = None
    ) -> Page[Row[Any]]:
        """An owner's items (``ITEM_CARD`` rows), newest first; ``q`` searches title and
        description. Nothing related is shown (the owner is the viewer): one query.
        """
        stmt = _OWNERS_ITEMS
        if q:
            stmt = stmt.where(or_(contains(Item.title, q), contains(Item.description, q)))
        params = {"owner_id": owner_id}
        return self.paginate(stmt, page=page, per_page=per_page, rows=True, params=params)

    def create_for(self, owner_id: int, *, title: str, description: str | None) -> Item:
        return self.create(owner_id=owner_id, title=title, description=description or None)
