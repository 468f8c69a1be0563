"""The SQLAlchemy side of the shop: engine, session factory, one model."""
import os

import sqlalchemy as sa
from sqlalchemy.orm import declarative_base, sessionmaker

DATABASE_URL = os.environ.get("DATABASE_URL", "postgresql+psycopg2:///shop")

engine = sa.create_engine(DATABASE_URL)
Session = sessionmaker(engine)
Base = declarative_base()


class Order(Base):
    __tablename__ = "orders"
    id = sa.Column(sa.BigInteger, primary_key=True)
    item = sa.Column(sa.Text, nullable=False)
    gift_note = sa.Column(sa.Text)
    shipped = sa.Column(sa.Boolean, nullable=False, default=False)
