"""The one list machinery, for every table: the list, bulk actions on its rows, CSV export.

How each table is shown is in ``tables``; its URL format in ``params``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

from flask import Response, flash, redirect, render_template, request, stream_with_context, url_for
from flask.typing import ResponseReturnValue
from flask_login import current_user
from sqlalchemy import ColumnElement

from webapp.admin import services
from webapp.admin.forms import ConfirmForm
from webapp.admin.pages import actor
from webapp.admin.params import PER_PAGE_CHOICES, parse_params
from webapp.admin.tables import TABLES, AdminTable, BulkChoice
from webapp.admin.views import bp
from webapp.auth.reauth import ask_for_sign_in, signed_in_recently
from webapp.db.session import reads_in_transaction
from webapp.extensions import db
from webapp.models import User
from webapp.repositories.admin import AdminRepository
from webapp.repositories.keyset import ListRepository
from webapp.web.csv_export import iter_csv
from webapp.web.requests import parse_int

MAX_SELECTED = 1_000


def show_list(table: AdminTable) -> ResponseReturnValue:
    # A plain dict: a MultiDict raises (and catches) an exception for every argument missing.
    params = parse_params(table.spec, request.args.to_dict())
    page = ListRepository(db.session, table.spec).page(params)
    return render_template(
        table.template,
        table=table,
        page=page,
        params=params,
        per_page_choices=PER_PAGE_CHOICES,
        **(table.context() if table.context else {}),
    )


def _selected_ids(values: list[str]) -> list[int]:
    parsed = (parse_int(value, minimum=1) for value in values)
    return sorted({n for n in parsed if n is not None})[:MAX_SELECTED]


def _no_selection(table: AdminTable, sent: list[str]) -> str:
    """Why a bulk action on the selected rows names none (no ids, or none that can be one)."""
    if any(value.strip() for value in sent):
        return f"Nothing changed: no {table.noun} has any of the selected ids."
    return f"Select at least one {table.noun} first."


def _self_left_out(
    admin: AdminRepository, table: AdminTable, choice: BulkChoice, target: ColumnElement[bool]
) -> bool:
    """Whether ``target`` holds the admin's own account, which the action leaves out."""
    return (
        table.bulk is not None
        and table.name == "users"
        and choice.name in {"deactivate", "delete"}
        and admin.count_where(table.bulk, target & (User.id == current_user.id)) > 0
    )


def _nothing_changes(
    admin: AdminRepository,
    table: AdminTable,
    choice: BulkChoice,
    scope: str,
    target: ColumnElement[bool],
    targeted: int,
) -> str:
    """Why a bulk action changes no row, when ``targeted`` rows are still there."""
    if not targeted:
        if scope == "all":
            return f"Nothing changed: no {table.plural} match the current filters."
        return f"Nothing changed: none of the selected {table.plural} exist any more."
    if targeted == 1 and _self_left_out(admin, table, choice, target):
        return f"Nothing changed: an admin cannot {choice.label.lower()} themselves."
    return f"Nothing changed: none of those {table.plural} needed that any more."


def bulk(table: AdminTable) -> ResponseReturnValue:
    """GET: a confirmation page saying how many rows will change. POST: change them.

    Either way, an action that can change nothing (no row selected, or none of them left)
    goes back to the list and says why.
    """
    assert table.bulk is not None
    args = request.form if request.method == "POST" else request.args
    params = parse_params(table.spec, args)
    back = url_for(table.endpoint, **table.query_args(params))
    choice = table.bulk_choice(args.get("bulk", ""))
    if choice is None:
        flash("Choose what to do with the rows.", "error")
        return redirect(back)
    if table.bulk.target_type == "user" and choice.name == "delete" and not signed_in_recently():
        # Asked again before the confirmation page, which then opens as it was asked for.
        kept = [(k, v) for k, v in args.items(multi=True) if k != "csrf_token"]
        return ask_for_sign_in(f"{url_for(request.endpoint or '')}?{urlencode(kept)}")
    scope = "all" if args.get("scope") == "all" else "selected"
    ids = _selected_ids(args.getlist("ids")) if scope == "selected" else []
    if scope == "selected" and not ids:
        flash(_no_selection(table, args.getlist("ids")), "error")
        return redirect(back)
    if scope == "all":
        target = ListRepository(db.session, table.spec).matching(params)
    else:
        target = table.spec.id_column.in_(ids)
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
            targeted = admin.count_where(table.bulk, target)
            flash(_nothing_changes(admin, table, choice, scope, target, targeted), "info")
        return redirect(back)

    targeted = admin.count_where(table.bulk, target)
    if not targeted:
        flash(_nothing_changes(admin, table, choice, scope, target, targeted), "info")
        return redirect(back)
    will_change = target & table.bulk.actions[choice.name].changes(current_user.id)
    count = admin.count_where(table.bulk, will_change)
    return render_template(
        "admin/bulk_confirm.html",
        table=table,
        choice=choice,
        scope=scope,
        ids=ids,
        params=params,
        targeted=targeted,
        count=count,
        names=admin.names_where(table.bulk, will_change),
        self_left_out=_self_left_out(admin, table, choice, target),
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
