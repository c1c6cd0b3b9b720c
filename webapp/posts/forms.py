from __future__ import annotations

from typing import Any

from flask import request
from wtforms import Field, StringField, SubmitField, TextAreaField
from wtforms.validators import DataRequired, Length, Optional
from wtforms.validators import ValidationError as WTFormsValidationError

from webapp.models import POST_BODY_MAX, Post
from webapp.validation import TAG_MAX_LENGTH, TAGS_PER_POST, ValidationError, parse_tags
from webapp.web.forms import Form, VersionField, normalise_newlines, strip

POST_TITLE_MAX = 200
# Room for the most tags a post may have, their commas and some spaces.
TAGS_FIELD_MAX = TAGS_PER_POST * (TAG_MAX_LENGTH + 2) + 100
TAG_SUGGESTIONS_ID = "tag-suggestions"


class PostForm(Form):
    title = StringField(
        "Title",
        filters=[strip],
        validators=[
            DataRequired("Give the post a title."),
            Length(max=POST_TITLE_MAX),
        ],
        render_kw={"maxlength": POST_TITLE_MAX},
    )
    body = TextAreaField(
        "Body",
        filters=[normalise_newlines, strip],
        validators=[
            Optional(),
            Length(max=POST_BODY_MAX),
        ],
        render_kw={"rows": 12},
    )
    tags = StringField(
        "Tags",
        filters=[strip],
        validators=[Length(max=TAGS_FIELD_MAX)],
        render_kw={"list": TAG_SUGGESTIONS_ID, "autocomplete": "off"},
    )
    submit = SubmitField("Publish post")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.tag_names: list[str] = []

    def validate_tags(self, field: Field) -> None:
        """Normalise the tags; the field then shows them as they will be saved."""
        if field.errors:  # too long or holding control characters: said once is enough
            return
        try:
            self.tag_names = parse_tags(field.data or "")
        except ValidationError as error:
            raise WTFormsValidationError(str(error)) from error
        field.data = ", ".join(self.tag_names)


class PostEditForm(PostForm):
    version = VersionField()
    submit = SubmitField("Save post")

    @classmethod
    def for_post(cls, post: Post) -> PostEditForm:
        """The form to edit ``post``: filled from it when opened (with the version it is at);
        a POST is judged on what it sent alone."""
        if request.method == "POST":
            return cls()
        tags = ", ".join(tag.name for tag in post.tags)
        return cls(
            data={"title": post.title, "body": post.body, "tags": tags, "version": post.version}
        )
