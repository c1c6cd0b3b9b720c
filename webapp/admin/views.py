"""The admin console: a dashboard and every table managed from HTML pages."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

from flask import (
    Blueprint,
    Response,
    abort,
    flash,
    redirect,
    render_template,
    request,
    stream_with_context,
    url_for,
)
from flask.typing import ResponseReturnValue
from flask_login import current_user
from sqlalchemy import ColumnElement
from sqlalchemy.exc import IntegrityError

from webapp.admin import services
from webapp.admin.charts import line_chart
from webapp.admin.forms import (
    ConfirmForm,
    PasswordSetForm,
    TagMergeForm,
    TagRenameForm,
    UserCreateForm,
    UserEditForm,
)
from webapp.admin.params import PER_PAGE_CHOICES, parse_params
from webapp.admin.tables import TABLES, AdminTable
from webapp.auth.login import signed_in_row
from webapp.db.session import reads_in_transaction
from webapp.extensions import db, login_manager
from webapp.items.forms import ItemEditForm
from webapp.models import Item, Post, Tag, User
from webapp.posts.forms import PostEditForm
from webapp.repositories import (
    AuditRepository,
    ItemRepository,
    PostRepository,
    TagRepository,
    UserRepository,
)
from webapp.repositories.admin import AdminRepository
from webapp.repositories.keyset import ListParams, ListRepository, nothing
from webapp.repositories.stats import StatsRepository
from webapp.web.conflicts import save_edit
from webapp.web.csv_export import iter_csv

bp = Blueprint("admin", __name__, url_prefix="/admin")

DASHBOARD_NEWEST_USERS = 5
DASHBOARD_EVENTS = 8
CHART_DAYS = 30
NARROW_CHART = (360, 260)  # drawn for phones, where the wide one would shrink its labels
MAX_SELECTED = 1_000


@bp.before_request
def require_admin() -> ResponseReturnValue | None:
    """The whole console: anonymous → the sign-in page, signed-in non-admin → 403."""
    if not current_user.is_authenticated:
        return login_manager.unauthorized()
    if not current_user.is_admin:
        abort(403)
    return None


def actor() -> User:
    """The signed-in admin, for the services and the audit rows (a read request needs only
    ``current_user.id``, which costs no query)."""
    return signed_in_row()


def get_or_404(repository: Any, row_id: int, **kwargs: Any) -> Any:
    row = repository.get(row_id, **kwargs)
    if row is None:
        abort(404)
    return row


@bp.get("/")
def dashboard() -> ResponseReturnValue:
    stats = StatsRepository(db.session)
    daily = stats.daily(days=CHART_DAYS)
    series = [
        ("users", "Sign-ups", daily.series["users"]),
        ("items", "New items", daily.series["items"]),
        ("posts", "New posts", daily.series["posts"]),
    ]
    charts = {
        "wide": line_chart(daily.days, series),
        "narrow": line_chart(daily.days, series, width=NARROW_CHART[0], height=NARROW_CHART[1]),
    }
    return render_template(
        "admin/dashboard.html",
        counts=stats.counts(),
        chart=charts["wide"],
        charts=charts,
        newest=UserRepository(db.session).newest(DASHBOARD_NEWEST_USERS),
        events=AuditRepository(db.session).latest(DASHBOARD_EVENTS),
    )


# --- The one list machinery: list, bulk actions and export, for every table -------------------


def show_list(table: AdminTable) -> ResponseReturnValue:
    # A plain dict: a MultiDict raises (and catches) an exception for every argument missing.
    params = parse_params(table.spec, request.args.to_dict())
    page = ListRepository(db.session, table.spec).page(params)
    return render_template(
        "admin/list.html",
        table=table,
        page=page,
        params=params,
        per_page_choices=PER_PAGE_CHOICES,
    )


def _selected_ids(values: list[str]) -> list[int]:
    ids = {int(v) for v in values if v.isdigit() and len(v) < 10 and int(v) <= 2_147_483_647}
    return sorted(ids)[:MAX_SELECTED]


def _bulk_target(
    table: AdminTable, params: ListParams, args: Any
) -> tuple[str, ColumnElement[bool]]:
    """The scope asked for ("selected" rows or "all" matching the filters) and its condition."""
    if args.get("scope") == "all":
        return "all", ListRepository(db.session, table.spec).matching(params)
    ids = _selected_ids(args.getlist("ids"))
    return "selected", table.spec.id_column.in_(ids) if ids else nothing()


def bulk(table: AdminTable) -> ResponseReturnValue:
    """GET: a confirmation page saying how many rows will change. POST: change them."""
    assert table.bulk is not None
    args = request.form if request.method == "POST" else request.args
    params = parse_params(table.spec, args)
    back = url_for(table.endpoint, **table.query_args(params))
    choice = table.bulk_choice(args.get("bulk", ""))
    if choice is None:
        flash("Choose what to do with the rows.", "error")
        return redirect(back)
    scope, target = _bulk_target(table, params, args)
    admin = AdminRepository(db.session)
    form = ConfirmForm()
    if request.method == "POST" and form.validate_on_submit():
        try:
            changed = services.bulk_apply(table.bulk, choice.name, target, actor())
        except services.RuleError as error:
            db.session.rollback()
            flash(str(error), "error")
            return redirect(back)
        db.session.commit()
        if changed:
            flash(f"{choice.done} {table.describe(changed)}.", "success")
        else:  # the chosen rows went, or no longer need it, since the confirmation page
            flash(f"Nothing changed: none of those {table.plural} needed that any more.", "info")
        return redirect(back)

    targeted = admin.count_where(table.bulk, target)
    if scope == "selected" and targeted == 0:
        flash(f"Select at least one {table.noun} first.", "error")
        return redirect(back)
    will_change = target & table.bulk.actions[choice.name].changes(current_user.id)
    count = admin.count_where(table.bulk, will_change)
    self_left_out = (
        table.name == "users"
        and choice.name in {"deactivate", "delete"}
        and admin.count_where(table.bulk, target & (User.id == current_user.id)) > 0
    )
    return render_template(
        "admin/bulk_confirm.html",
        table=table,
        choice=choice,
        scope=scope,
        ids=_selected_ids(args.getlist("ids")) if scope == "selected" else [],
        params=params,
        targeted=targeted,
        count=count,
        names=admin.names_where(table.bulk, will_change),
        self_left_out=self_left_out,
        form=form,
        back=back,
    )


def _csv_value(value: Any) -> Any:
    return json.dumps(value, sort_keys=True) if isinstance(value, dict | list) else value


def export(table: AdminTable) -> ResponseReturnValue:
    """The filtered list as CSV, streamed row by row (memory stays flat for a million rows)."""
    params = parse_params(table.spec, request.args)
    listing = ListRepository(db.session, table.spec)

    def rows() -> Iterator[list[Any]]:
        for row in listing.export_rows(params):
            yield [_csv_value(value) for value in row]

    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    return Response(
        stream_with_context(iter_csv(listing.export_header, rows())),
        mimetype="text/csv",
        headers={
            "Content-Disposition": f'attachment; filename="{table.name}-{stamp}.csv"',
            "Cache-Control": "no-store",
            "X-Content-Type-Options": "nosniff",
        },
    )


def _view(function: Callable[[AdminTable], ResponseReturnValue], table: AdminTable) -> Any:
    def view() -> ResponseReturnValue:
        return function(table)

    view.__name__ = f"{table.name}_{function.__name__}"
    return view


for _table in TABLES.values():
    bp.add_url_rule(f"/{_table.name}", _table.name, _view(show_list, _table), methods=["GET"])
    bp.add_url_rule(
        f"/{_table.name}/export",
        f"{_table.name}_export",
        reads_in_transaction(_view(export, _table)),
        methods=["GET"],
    )
    if _table.bulk is not None:
        bp.add_url_rule(
            f"/{_table.name}/bulk",
            f"{_table.name}_bulk",
            _view(bulk, _table),
            methods=["GET", "POST"],
        )


# --- Shared helpers for the single-row pages --------------------------------------------------


def confirm_delete(
    *,
    title: str,
    consequences: list[str],
    perform: Callable[[], None],
    done: str,
    back: str,
    message: str,
    refused: str | None = None,
) -> ResponseReturnValue:
    """GET: what will go, and a button. POST: delete, commit, and go to ``done``."""
    form = ConfirmForm()
    if request.method == "POST" and form.validate_on_submit():
        if refused:
            flash(refused, "error")
            return redirect(back)
        try:
            perform()
        except services.RuleError as error:
            db.session.rollback()
            flash(str(error), "error")
            return redirect(back)
        db.session.commit()
        flash(message, "success")
        return redirect(done)
    return render_template(
        "admin/confirm_delete.html",
        title=title,
        consequences=consequences,
        form=form,
        back=back,
        refused=refused,
    )


# --- Users ------------------------------------------------------------------------------------


@bp.route("/users/new", methods=["GET", "POST"])
def user_create() -> ResponseReturnValue:
    form = UserCreateForm()
    if form.validate_on_submit() and form.check_unique():
        try:
            user = services.create_user(
                actor(),
                email=form.email.data,
                username=form.username.data,
                password=form.password.data,
                is_active=form.is_active.data,
                is_admin=form.is_admin.data,
            )
            db.session.commit()
        except IntegrityError as error:
            db.session.rollback()
            form.report_taken(error)
        else:
            flash(f"User {user.username} created.", "success")
            return redirect(url_for("admin.user_edit", user_id=user.id))
    return render_template("admin/user_form.html", form=form, user=None, is_self=False)


def _render_user(
    user: User, form: UserEditForm | None = None, password_form: PasswordSetForm | None = None
) -> str:
    items, posts = UserRepository(db.session).content_counts(user.id)
    return render_template(
        "admin/user_form.html",
        user=user,
        form=form or UserEditForm(obj=user),
        password_form=password_form or PasswordSetForm(),
        items=items,
        posts=posts,
        is_self=user.id == current_user.id,
    )


@bp.route("/users/<int(max=2147483647):user_id>", methods=["GET", "POST"])
def user_edit(user_id: int) -> ResponseReturnValue:
    user: User = get_or_404(UserRepository(db.session), user_id)
    form = UserEditForm(obj=user)
    if form.validate_on_submit() and form.check_unique(exclude_id=user.id):
        values = {name: getattr(form, name).data for name in services.USER_FIELDS}
        try:
            changed = services.update_user(actor(), user, values)
            db.session.commit()
        except services.RuleError as error:
            db.session.rollback()
            form.form_errors.append(str(error))
        except IntegrityError as error:
            db.session.rollback()
            form.report_taken(error)
        else:
            flash(
                f"Saved {user.username}." if changed else "Nothing changed.",
                "success" if changed else "info",
            )
            return redirect(url_for("admin.user_edit", user_id=user.id))
    return _render_user(user, form=form)


@bp.post("/users/<int(max=2147483647):user_id>/password")
def user_password(user_id: int) -> ResponseReturnValue:
    user: User = get_or_404(UserRepository(db.session), user_id)
    form = PasswordSetForm()
    form.account = user
    if form.validate_on_submit():
        services.set_password(actor(), user, form.password.data)
        db.session.commit()
        flash(f"New password set for {user.username}; their sessions have ended.", "success")
        return redirect(url_for("admin.user_edit", user_id=user.id))
    return _render_user(user, password_form=form)


@bp.route("/users/<int(max=2147483647):user_id>/delete", methods=["GET", "POST"])
def user_delete(user_id: int) -> ResponseReturnValue:
    user: User = get_or_404(UserRepository(db.session), user_id)
    items, posts = UserRepository(db.session).content_counts(user.id)
    name = user.username
    return confirm_delete(
        title=f"Delete the user {name}?",
        consequences=[
            f"The account {name} <{user.email}>",
            f"{items:,} item{'' if items == 1 else 's'}",
            f"{posts:,} post{'' if posts == 1 else 's'}",
        ],
        perform=lambda: services.delete_user(actor(), user),
        done=url_for("admin.users"),
        back=url_for("admin.user_edit", user_id=user.id),
        message=f"User {name} deleted, with {items:,} items and {posts:,} posts.",
        refused="You cannot delete your own account here." if user.id == current_user.id else None,
    )


# --- Items ------------------------------------------------------------------------------------


def _saved(noun: str, changes: object) -> None:
    flash(f"{noun} saved." if changes else "Nothing changed.", "success" if changes else "info")


@bp.route("/items/<int(max=2147483647):item_id>", methods=["GET", "POST"])
def item_edit(item_id: int) -> ResponseReturnValue:
    items = ItemRepository(db.session)
    item: Item = get_or_404(items, item_id)
    form = ItemEditForm.for_item(item)
    if form.validate_on_submit():
        values = {"title": form.title.data, "description": form.description.data or None}
        edit = save_edit(
            form,
            "item",
            lambda version: services.update_item(actor(), item, version, values),
            lambda: items.get(item_id),
        )
        if edit.saved:
            _saved("Item", edit.changes)
            return redirect(url_for("admin.item_edit", item_id=item.id))
        if edit.current is None:
            return redirect(url_for("admin.items"))
    owner = UserRepository(db.session).get(item.owner_id)
    return render_template(
        "admin/item_form.html", form=form, item=item, owner=owner, conflict=form.conflicted
    )


@bp.route("/items/<int(max=2147483647):item_id>/delete", methods=["GET", "POST"])
def item_delete(item_id: int) -> ResponseReturnValue:
    item: Item = get_or_404(ItemRepository(db.session), item_id)
    title = item.title
    return confirm_delete(
        title=f"Delete the item “{title}”?",
        consequences=[f"The item “{title}”"],
        perform=lambda: services.delete_item(actor(), item),
        done=url_for("admin.items"),
        back=url_for("admin.item_edit", item_id=item.id),
        message=f"Item “{title}” deleted.",
    )


# --- Posts ------------------------------------------------------------------------------------


@bp.route("/posts/<int(max=2147483647):post_id>", methods=["GET", "POST"])
def post_edit(post_id: int) -> ResponseReturnValue:
    posts = PostRepository(db.session)
    post = posts.get_with_relations(post_id)
    if post is None:
        abort(404)
    form = PostEditForm.for_post(post)
    if form.validate_on_submit():
        values = {"title": form.title.data, "body": form.body.data or None}
        edit = save_edit(
            form,
            "post",
            lambda version: services.update_post(actor(), post, version, values, form.tag_names),
            lambda: posts.get_with_relations(post_id),
        )
        if edit.saved:
            _saved("Post", edit.changes)
            return redirect(url_for("admin.post_edit", post_id=post.id))
        if edit.current is None:
            return redirect(url_for("admin.posts"))
    return render_template(
        "admin/post_form.html", form=form, post=post, author=post.author, conflict=form.conflicted
    )


@bp.route("/posts/<int(max=2147483647):post_id>/delete", methods=["GET", "POST"])
def post_delete(post_id: int) -> ResponseReturnValue:
    post: Post = get_or_404(PostRepository(db.session), post_id)
    title = post.title
    return confirm_delete(
        title=f"Delete the post “{title}”?",
        consequences=[f"The post “{title}” and its tag links (the tags stay)"],
        perform=lambda: services.delete_post(actor(), post),
        done=url_for("admin.posts"),
        back=url_for("admin.post_edit", post_id=post.id),
        message=f"Post “{title}” deleted.",
    )


# --- Tags -------------------------------------------------------------------------------------


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
                flash(
                    f"Tag renamed to “{tag.name}”." if renamed else "Nothing changed.",
                    "success" if renamed else "info",
                )
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
            f"Its links to {count:,} post{'' if count == 1 else 's'} (the posts stay)",
        ],
        perform=lambda: services.delete_tag(actor(), tag),
        done=url_for("admin.tags"),
        back=url_for("admin.tag_edit", tag_id=tag.id),
        message=f"Tag “{name}” deleted.",
    )
