"""Checks what the guide (docs/guides/fastapi-async.md) says, against the
application served by uvicorn, a real Celery worker (both started by run.sh)
and the real database:

1. a POST to the endpoint: the worker welcomes the committed signup;
2. inside ``async with AsyncSession.begin():`` the task id and token are
   set before COMMIT, the worker is blocked on the transaction's lock and
   the row is invisible elsewhere; after COMMIT that task welcomes it;
3. an exception after the spawn: the transaction rolls back and the task
   is not run (FAILURE, TransactionAborted);
4. a plain .delay() inside the asyncio transaction raises
   BarrierConfigurationError; inside session.run_sync() it takes a barrier;
5. the asyncio consumer waits for 10 open transactions on one backend
   (barrier_waiters); it sends the webhooks of the 5 that commit.
"""
import asyncio
import os
import sys
import time

import httpx
import psycopg

import tx_barrier
import tx_barrier.sqlalchemy
from app import sign_up
from db import AsyncSession, Signup, async_engine
from tasks import app, send_welcome

DEADLINE = 30
observer = psycopg.connect(dbname=async_engine.url.database, autocommit=True)


def query(sql, *params):
    row = observer.execute(sql, params).fetchone()
    return row[0] if row else None


async def until(what, condition):
    end = time.monotonic() + DEADLINE
    while not condition():
        if time.monotonic() > end:
            sys.exit("timed out waiting for: " + what)
        await asyncio.sleep(0.02)


def blocked_on(token):
    """Whether a worker session sleeps on the lock of token's transaction."""
    return query("SELECT count(*) > 0 FROM pg_locks l JOIN pg_stat_activity a USING (pid)"
                 " WHERE l.locktype = 'transactionid' AND NOT l.granted"
                 " AND l.transactionid::text = (%s::numeric %% 4294967296)::text"
                 " AND a.query LIKE '%%barrier_wait%%'", token)


async def main():
    # 1. The endpoint, served by uvicorn.
    async with httpx.AsyncClient(base_url=os.environ["APP_URL"]) as client:
        r = await client.post("/signups", json={"email": "ada@example.com"})
    assert r.status_code == 201, r.text
    body = r.json()
    assert app.AsyncResult(body["task"]).get(timeout=DEADLINE) == "welcomed ada@example.com"
    assert query("SELECT welcomed FROM signups WHERE id = %s", body["signup"]) is True
    print("1. POST /signups: task %s welcomed signup %d" % (body["task"], body["signup"]))

    # 2. The task id and the token before COMMIT; the worker waits.
    async with AsyncSession.begin() as session:
        signup, result = await sign_up(session, "grace@example.com")
        task_id = result.id
        await until("the worker blocked", lambda: blocked_on(result.barrier_token))
        assert query("SELECT count(*) FROM signups WHERE id = %s", signup.id) == 0
    assert app.AsyncResult(task_id).get(timeout=DEADLINE) == "welcomed grace@example.com"
    print("2. task id %s before COMMIT; the worker waited on token %s"
          % (task_id, result.barrier_token))

    # 3. Rollback after the spawn: the task is not run.
    try:
        async with AsyncSession.begin() as session:
            signup, result = await sign_up(session, "eve@example.com")
            await until("the worker blocked", lambda: blocked_on(result.barrier_token))
            raise RuntimeError("address rejected")
    except RuntimeError:
        pass
    await until("the task to fail", lambda: result.state == "FAILURE")
    assert type(result.result).__name__ == "TransactionAborted", result.result
    assert query("SELECT count(*) FROM signups WHERE email = 'eve@example.com'") == 0
    print("3. rolled back: task %s not run (%s)" % (result.id, type(result.result).__name__))

    # 4. A plain .delay() cannot take the token from the event loop ...
    async with AsyncSession.begin() as session:
        signup = Signup(email="alan@example.com")
        session.add(signup)
        await session.flush()
        try:
            send_welcome.delay(signup.id)
            sys.exit("a plain delay() inside an asyncio transaction published")
        except tx_barrier.BarrierConfigurationError as exc:
            print("4. delay() in the event loop: BarrierConfigurationError:", exc)
        # ... but inside run_sync() the synchronous API works.
        token = await tx_barrier.sqlalchemy.enqueue_async(session)   # the same xid
        late = await session.run_sync(lambda sync_session: send_welcome.delay(signup.id))
        await until("the worker blocked", lambda: blocked_on(token))
    assert late.get(timeout=DEADLINE) == "welcomed alan@example.com"
    print("   delay() inside run_sync(): waited on token %s, then ran" % token)

    # 5. 10 signups in 10 open transactions: the consumer waits for all of
    # them on one connection; 5 commit, 5 roll back.
    sessions, tokens, ids = [AsyncSession() for _ in range(10)], [], []
    for i, session in enumerate(sessions):
        await session.begin()
        signup, result = await sign_up(
            session, "%s%d@example.com" % ("ok" if i % 2 == 0 else "rolled", i))
        tokens.append(result.barrier_token)
        ids.append(signup.id)

    def one_backend():
        return query("SELECT count(DISTINCT w.token) = 10 AND count(DISTINCT w.pid) = 1"
                     " FROM barrier_waiters() w JOIN pg_stat_activity a USING (pid)"
                     " WHERE a.application_name = 'webhooks'"
                     " AND w.token::text = ANY(%s)", tokens)
    await until("the consumer waiting for 10 tokens on one backend", one_backend)
    for i, session in enumerate(sessions):
        await (session.commit() if i % 2 == 0 else session.rollback())
        await session.close()
    committed = ids[0::2]
    await until("5 webhooks", lambda: query(
        "SELECT count(*) FROM webhook_deliveries WHERE signup_id = ANY(%s)", committed) == 5)
    print("5. one backend waited for 10 transactions; webhooks for the 5 committed")
    await async_engine.dispose()


asyncio.run(main())
