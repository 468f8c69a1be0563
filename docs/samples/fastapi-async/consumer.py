"""An asyncio consumer without Celery: it sends each new signup's webhook
once the signup's transaction has committed, and never for one that rolled
back.  Every pending wait of the process shares one database connection
(tx_barrier.Waiter; the server preloads tx_barrier)."""
import asyncio
import json
import logging
import os

import psycopg
import redis.asyncio as aioredis
from tx_barrier import COMMITTED, Waiter

REDIS_URL = os.environ.get("BROKER_URL", "redis://localhost:6379/0")
DSN = os.environ.get("WAITER_DSN", "dbname=signups")
QUEUE = "signup-webhooks"
log = logging.getLogger("consumer")


async def deliver(waiter, message):
    state = await waiter.wait_async(message["token"], timeout=600)
    if state != COMMITTED:
        log.info("signup %s rolled back: no webhook", message["signup"])
        return
    # Committed: the row is there.  (A real consumer would POST it.)
    async with await psycopg.AsyncConnection.connect(DSN, autocommit=True) as conn:
        await conn.execute("INSERT INTO webhook_deliveries VALUES (%s, %s)",
                           (message["signup"], message["email"]))
    log.info("signup %s: webhook sent", message["signup"])


async def main():
    redis = aioredis.from_url(REDIS_URL)
    running = set()
    with Waiter(DSN) as waiter:
        log.info("consuming %s", QUEUE)
        while True:
            _, raw = await redis.blpop([QUEUE])
            task = asyncio.create_task(deliver(waiter, json.loads(raw)))
            running.add(task)
            task.add_done_callback(running.discard)


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(name)s: %(message)s")
    asyncio.run(main())
