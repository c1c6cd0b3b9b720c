"""My trash (``/account/trash``): the items and posts I deleted, to restore or erase.

An owner sees what they deleted themselves; an item or post an admin removed stays with the
admins (``/admin/trash``).
"""

from __future__ import annotations

from flask import current_app, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue

from webapp.account.views import bp
from webapp.admin.forms import ConfirmForm
from webapp.auth.login import signed_in_row
from webapp.extensions import db
from webapp.repositories.trash import KINDS, TrashRepository, own_trash_target
from webapp.web.requests import client_ip, page_arg, parse_int

OWN_KINDS = ("items", "posts")
MAX_SELECTED = 1_000
CHOICES = {"restore": ("Restore", "Restored"), "purge": ("Delete forever", "Deleted forever")}


def _kind(value: str | None) -> str:
    return value if value in OWN_KINDS else OWN_KINDS[0]


@bp.get("/trash")
def trash() -> ResponseReturnValue:
    user = signed_in_row()
    kind = _kind(request.args.get("kind"))
    page = TrashRepository(db.session).own_trash(kind, user.id, page=page_arg())
    return render_template(
        "account/trash.html",
        kind=kind,
        page=page,
        retention_days=current_app.config["TRASH_RETENTION_DAYS"],
    )


def _noun(kind: str, count: int) -> str:
    return f"{count:,} {kind if count != 1 else kind[:-1]}"


@bp.route("/trash/bulk", methods=["GET", "POST"])
def trash_bulk() -> ResponseReturnValue:
    """GET: what will be restored or erased. POST: do it, and go back to my trash."""
    args = request.form if request.method == "POST" else request.args
    kind = _kind(args.get("kind"))
    back = url_for("account.trash", kind=kind)
    choice = args.get("bulk", "")
    if choice not in CHOICES:
        flash("Choose Restore or Delete forever.", "error")
        return redirect(back)
    parsed = (parse_int(value, minimum=1) for value in args.getlist("ids"))
    ids = sorted({n for n in parsed if n is not None})[:MAX_SELECTED]
    if not ids:
        flash(f"Select at least one {kind[:-1]} first.", "error")
        return redirect(back)
    user = signed_in_row()
    model, _ = KINDS[kind]
    target = own_trash_target(kind, user.id, ids)
    trash = TrashRepository(db.session)
    count = trash.count_where(model, target)
    if not count:
        flash(f"Nothing changed: none of those {kind} are in your trash now.", "info")
        return redirect(back)
    form = ConfirmForm()
    if request.method == "POST" and form.validate_on_submit():
        if choice == "restore":
            done = trash.restore(
                kind, target, actor=user, ip_address=client_ip(), audit_prefix=""
            ).restored
        else:
            done = trash.delete_forever(
                kind, target, actor=user, ip_address=client_ip(), audit_prefix=""
            )
        db.session.commit()
        flash(f"{CHOICES[choice][1]}: {_noun(kind, done)}.", "success")
        return redirect(back)
    return render_template(
        "account/trash_confirm.html",
        kind=kind,
        choice=choice,
        label=CHOICES[choice][0],
        ids=ids,
        count=count,
        what=_noun(kind, count),
        names=trash.names_where(model, target),
        form=form,
        back=back,
    )
