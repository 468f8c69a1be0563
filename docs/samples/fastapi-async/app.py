"""A FastAPI application on an asyncio SQLAlchemy session."""
import json
import os

import redis.asyncio as aioredis
from fastapi import FastAPI
from pydantic import BaseModel

import tx_barrier.sqlalchemy
from db import AsyncSession, Signup
from tasks import send_welcome

app = FastAPI()
redis = aioredis.from_url(os.environ.get("BROKER_URL", "redis://localhost:6379/0"))


class SignupIn(BaseModel):
    email: str


async def sign_up(session, email):
    """Adds the signup and spawns its task in the session's transaction."""
    signup = Signup(email=email)
    session.add(signup)
    await session.flush()                       # signup.id is set
    # A synchronous publish cannot run a query from the event loop: take
    # the token first, then publish with it.
    token = await tx_barrier.sqlalchemy.enqueue_async(session)
    result = send_welcome.apply_async_with_barrier(args=(signup.id,), token=token)
    # The same token for the asyncio consumer's webhook (consumer.py).
    await redis.rpush("signup-webhooks", json.dumps(
        {"signup": signup.id, "email": email, "token": token}))
    return signup, result


@app.post("/signups", status_code=201)
async def create_signup(body: SignupIn):
    async with AsyncSession.begin() as session:       # BEGIN ... COMMIT
        signup, result = await sign_up(session, body.email)
    return {"signup": signup.id, "task": result.id, "token": result.barrier_token}
