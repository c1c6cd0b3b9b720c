"""Extension instances, unbound: ``create_app`` binds them to the application."""

from __future__ import annotations

from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from flask_login import LoginManager
from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy
from flask_wtf import CSRFProtect
from sqlalchemy import MetaData
from sqlalchemy.orm import DeclarativeBase, registry

from webapp.db.replicas import RoutingSession
from webapp.db.types import UTCDateTime, type_annotation_map

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    """Declarative base: named constraints and aware UTC datetimes on every model."""

    registry = registry(
        metadata=MetaData(naming_convention=NAMING_CONVENTION),
        type_annotation_map=type_annotation_map,
    )


__all__ = ["Base", "UTCDateTime", "csrf", "db", "limiter", "login_manager", "migrate"]

# A test joins its own outer transaction; "create_savepoint" lets the view's commit stay inside it.
# RoutingSession sends a read request to a replica when there are replicas (webapp.db.replicas).
db = SQLAlchemy(
    model_class=Base,
    session_options={
        "class_": RoutingSession,
        "expire_on_commit": False,
        "join_transaction_mode": "create_savepoint",
    },
)
migrate = Migrate()
csrf = CSRFProtect()
login_manager = LoginManager()
limiter = Limiter(key_func=get_remote_address)
