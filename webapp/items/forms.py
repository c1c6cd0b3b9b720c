from __future__ import annotations

from flask import request
from wtforms import StringField, SubmitField, TextAreaField
from wtforms.validators import DataRequired, Length, Optional

from webapp.models import Item
from webapp.web.forms import Form, VersionField, normalise_newlines, strip

ITEM_TITLE_MAX = 100
ITEM_DESCRIPTION_MAX = 500


class ItemForm(Form):
    title = StringField(
        "Title",
        filters=[strip],
        validators=[
            DataRequired("Give the item a title."),
            Length(max=ITEM_TITLE_MAX),
        ],
        render_kw={"maxlength": ITEM_TITLE_MAX},
    )
    description = TextAreaField(
        "Description",
        filters=[normalise_newlines, strip],
        validators=[
            Optional(),
            Length(max=ITEM_DESCRIPTION_MAX),
        ],
        render_kw={"rows": 5},
    )
    submit = SubmitField("Save item")


class ItemEditForm(ItemForm):
    version = VersionField()

    @classmethod
    def for_item(cls, item: Item) -> ItemEditForm:
        """The form to edit ``item``: filled from it when opened (with the version it is at);
        a POST is judged on what it sent alone."""
        return cls() if request.method == "POST" else cls(obj=item)
