"""SQLAlchemy 2.0 on psycopg 3: the asyncio engine of the web application,
and a synchronous engine for the Celery worker."""
import os

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import async_sessionmaker, create_async_engine
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, sessionmaker

DATABASE_URL = os.environ.get("DATABASE_URL", "postgresql+psycopg:///signups")

async_engine = create_async_engine(DATABASE_URL)     # the web application
AsyncSession = async_sessionmaker(async_engine, expire_on_commit=False)

engine = sa.create_engine(DATABASE_URL)              # the Celery worker
Session = sessionmaker(engine)


class Base(DeclarativeBase):
    pass


class Signup(Base):
    __tablename__ = "signups"
    id: Mapped[int] = mapped_column(sa.BigInteger, primary_key=True)
    email: Mapped[str]
    welcomed: Mapped[bool] = mapped_column(default=False)
