"""Tags: rename, merge into another, delete."""

from __future__ import annotations

from flask import flash, redirect, render_template, url_for
from flask.typing import ResponseReturnValue
from sqlalchemy.exc import IntegrityError

from webapp.admin import services
from webapp.admin.forms import TagMergeForm, TagRenameForm
from webapp.admin.pages import actor, confirm_delete, get_or_404
from webapp.admin.tables import POSTS
from webapp.admin.views import bp
from webapp.extensions import db
from webapp.models import Tag
from webapp.repositories import TagRepository
from webapp.repositories.admin import AdminRepository
from webapp.web.edits import flash_saved


def _render_tag(
    tag: Tag, form: TagRenameForm | None = None, merge_form: TagMergeForm | None = None
) -> str:
    return render_template(
        "admin/tag_form.html",
        tag=tag,
        form=form or TagRenameForm(obj=tag),
        merge_form=merge_form or TagMergeForm(),
        post_count=AdminRepository(db.session).post_count(tag.id),
    )


@bp.route("/tags/<int(max=2147483647):tag_id>", methods=["GET", "POST"])
def tag_edit(tag_id: int) -> ResponseReturnValue:
    tags = TagRepository(db.session)
    tag: Tag = get_or_404(tags, tag_id)
    form = TagRenameForm(obj=tag)
    if form.validate_on_submit():
        other = tags.get_by_name(form.name.data)
        if other is not None and other.id != tag.id:
            form.name.errors.append(
                f"A tag named “{other.name}” already exists: merge into it instead."
            )
        else:
            try:
                renamed = services.rename_tag(actor(), tag, form.name.data)
                db.session.commit()
            except IntegrityError:
                db.session.rollback()
                form.name.errors.append("A tag with that name already exists.")
            else:
                flash_saved(f"Tag renamed to “{tag.name}”.", renamed)
                return redirect(url_for("admin.tag_edit", tag_id=tag.id))
    return _render_tag(tag, form=form)


@bp.post("/tags/<int(max=2147483647):tag_id>/merge")
def tag_merge(tag_id: int) -> ResponseReturnValue:
    tags = TagRepository(db.session)
    tag: Tag = get_or_404(tags, tag_id)
    form = TagMergeForm()
    if form.validate_on_submit():
        target = tags.get_by_name(form.target.data)
        if target is None:
            form.target.errors.append(f"There is no tag named “{form.target.data}”.")
        elif target.id == tag.id:
            form.target.errors.append("Choose another tag: a tag cannot be merged into itself.")
        else:
            source_name, target_name, target_id = tag.name, target.name, target.id
            moved = services.merge_tag(actor(), tag, target)
            db.session.commit()
            flash(f"Merged “{source_name}” into “{target_name}”: {moved:,} posts moved.", "success")
            return redirect(url_for("admin.tag_edit", tag_id=target_id))
    return _render_tag(tag, merge_form=form)


@bp.route("/tags/<int(max=2147483647):tag_id>/delete", methods=["GET", "POST"])
def tag_delete(tag_id: int) -> ResponseReturnValue:
    tag: Tag = get_or_404(TagRepository(db.session), tag_id)
    name = tag.name
    count = AdminRepository(db.session).post_count(tag.id)
    return confirm_delete(
        title=f"Delete the tag “{name}”?",
        consequences=[
            f"The tag “{name}”",
            f"Its links to {POSTS.describe(count)} (the posts stay)",
        ],
        perform=lambda: services.delete_tag(actor(), tag),
        done=url_for("admin.tags"),
        back=url_for("admin.tag_edit", tag_id=tag.id),
        message=f"Tag “{name}” deleted.",
    )
