"""The SQLAlchemy side: engine, session factory, one model."""
import os

import sqlalchemy as sa
from sqlalchemy.orm import declarative_base, sessionmaker

DATABASE_URL = os.environ.get("DATABASE_URL", "postgresql+psycopg2:///reports")
engine = sa.create_engine(DATABASE_URL)
Session = sessionmaker(engine)
Base = declarative_base()


class Report(Base):
    __tablename__ = "reports"
    id = sa.Column(sa.BigInteger, primary_key=True)
    title = sa.Column(sa.Text, nullable=False)
    rendered = sa.Column(sa.Boolean, nullable=False, default=False)
