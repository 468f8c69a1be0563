/*-------------------------------------------------------------------------
 *
 * barrier_wait.c
 *		Waiting, without polling, until a token's transaction has ended.
 *
 * On a primary every transaction holds an ExclusiveLock on its own xid
 * until after it is visible as committed or aborted, so waiting means
 * sleeping on that lock, as a row-lock waiter does: the ending transaction
 * wakes us, the wait shows in pg_locks and pg_stat_activity, deadlock
 * detection sees it, and a prepared transaction keeps the lock until
 * COMMIT/ROLLBACK PREPARED.
 *
 * A released (sub-committed) subtransaction gives up its xid lock at once,
 * but its outcome is decided by its parent.  XactLockTableWait would then
 * wait for the topmost transaction, which wakes us late when an enclosing
 * savepoint is rolled back first; we climb one level at a time instead,
 * always sleeping on the nearest ancestor that is still open.
 *
 * A lock wait has no timeout of its own.  A bounded wait runs inside an
 * internal subtransaction with the lock timeout armed at our deadline, and
 * catches the lock-timeout error, as PL/pgSQL's exception blocks do.
 *
 * On a hot standby the primary's xid locks do not exist; the transaction's
 * end arrives by WAL replay, and we look again whenever replay has advanced
 * (barrier_standby.c).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/subtrans.h"
#include "access/xact.h"
#include "access/xlog.h"
#include "miscadmin.h"
#include "storage/lmgr.h"
#include "storage/proc.h"
#include "storage/procarray.h"
#include "utils/memutils.h"
#include "utils/resowner.h"
#include "utils/snapmgr.h"
#include "utils/timeout.h"

#include "barrier_internal.h"

/*
 * Sleep until the (sub)transaction xid has ended: committed, aborted, or
 * released into a parent that has then ended.  Each step sleeps on the xid
 * lock of the nearest ancestor still open, which its owner holds until that
 * level ends; when it is gone and xid is still in progress, that level was
 * released into its parent, which decides now.
 */
static void
txb_xid_lock_wait(TransactionId xid)
{
	TransactionId level = xid;
	LOCKTAG		tag;

	for (;;)
	{
		TransactionId parent;

		SET_LOCKTAG_TRANSACTION(tag, level);
		(void) LockAcquire(&tag, ShareLock, false, false);
		LockRelease(&tag, ShareLock, false);

		if (!TransactionIdIsInProgress(xid))
			return;

		parent = SubTransGetParent(level);
		if (TransactionIdIsValid(parent))
			level = parent;
		else
		{
			/*
			 * A top-level xid still in progress after its lock was free: only
			 * possible in the moment between its entry into the proc array
			 * and its lock (see XactLockTableWait).  Look again soon.
			 */
			pg_usleep(1000L);
			CHECK_FOR_INTERRUPTS();
		}
	}
}

/*
 * Sleep until the (sub)transaction xid has ended, at most until deadline.
 * Returns false if the deadline passed first.
 */
static bool
txb_lock_wait(TransactionId xid, bool has_deadline, TimestampTz deadline)
{
	MemoryContext oldcontext = CurrentMemoryContext;
	ResourceOwner oldowner = CurrentResourceOwner;
	int			save_lock_timeout = LockTimeout;
	volatile bool finished = true;	/* set in PG_CATCH, read after it */

	/*
	 * ProcSleep arms the lock timeout itself when lock_timeout is set, which
	 * would cut the wait short (or replace our deadline): the function's own
	 * timeout argument governs this wait instead.
	 */
	if (!has_deadline)
	{
		LockTimeout = 0;
		PG_TRY();
		{
			txb_xid_lock_wait(xid);
		}
		PG_FINALLY();
		{
			LockTimeout = save_lock_timeout;
		}
		PG_END_TRY();
		return true;
	}

	BeginInternalSubTransaction(NULL);
	MemoryContextSwitchTo(oldcontext);

	PG_TRY();
	{
		LockTimeout = 0;
		enable_timeout_at(LOCK_TIMEOUT, deadline);
		txb_xid_lock_wait(xid);

		/*
		 * A timer that fired just as the lock was granted has sent us the
		 * SIGINT that a lock timeout is made of, and QueryCancelPending is
		 * set.  Keep its indicator, as ProcSleep does, so that the pending
		 * cancel is reported as a lock timeout (which the PG_CATCH below
		 * takes as "look again") and not as a cancel by the user; and take it
		 * here, where it is caught, not in a later statement.
		 */
		disable_timeout(LOCK_TIMEOUT, true);
		LockTimeout = save_lock_timeout;
		CHECK_FOR_INTERRUPTS();

		ReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(oldcontext);
		CurrentResourceOwner = oldowner;
	}
	PG_CATCH();
	{
		ErrorData  *edata;

		LockTimeout = save_lock_timeout;
		disable_timeout(LOCK_TIMEOUT, false);

		MemoryContextSwitchTo(oldcontext);
		edata = CopyErrorData();
		FlushErrorState();

		RollbackAndReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(oldcontext);
		CurrentResourceOwner = oldowner;

		/*
		 * With lock_timeout disabled, only our deadline raises this code;
		 * cancels, statement_timeout and deadlocks propagate.
		 */
		if (edata->sqlerrcode != ERRCODE_LOCK_NOT_AVAILABLE)
			ReThrowError(edata);
		FreeErrorData(edata);
		finished = false;
	}
	PG_END_TRY();

	return finished;
}

/*
 * One look at the token: its final state, or whether we must sleep.
 */
static bool
txb_wait_done(FullTransactionId fxid, TxbState *state)
{
	switch (txb_lookup(fxid, state))
	{
		case TXB_LOOKUP_DONE:
			return true;
		case TXB_LOOKUP_OWN:
			/* Our own transaction cannot end while we wait on it. */
			*state = TXB_IN_PROGRESS;
			return true;
		case TXB_LOOKUP_NOT_YET_SEEN:
		case TXB_LOOKUP_RUNNING:
			break;
	}
	*state = TXB_IN_PROGRESS;
	return false;
}

/*
 * Sleep until the token's transaction has ended or the deadline passed.
 */
static TxbState
txb_wait_blocking(FullTransactionId fxid, bool has_deadline,
				  TimestampTz deadline)
{
	TxbState	state;

	for (;;)
	{
		XLogRecPtr	seen = txb_standby_seen();

		if (txb_wait_done(fxid, &state))
			return state;
		if (has_deadline && GetCurrentTimestamp() >= deadline)
			return TXB_IN_PROGRESS;

		if (RecoveryInProgress())
			txb_standby_sleep(seen, has_deadline, deadline);
		else
		{
			/* Promoted while we polled for standby waiters: stop that. */
			txb_standby_release();
			(void) txb_lock_wait(XidFromFullTransactionId(fxid),
								 has_deadline, deadline);
		}
	}
}

/*
 * Wait until the transaction fxid names has ended, or the deadline passed.
 * Returns its outcome, or TXB_IN_PROGRESS on timeout and for the caller's
 * own transaction (which can never end while we wait on it).
 */
TxbState
txb_wait(FullTransactionId fxid, bool has_deadline, TimestampTz deadline)
{
	TxbState	state;

	/* Finished transactions, the common case, cost one lookup. */
	if (txb_wait_done(fxid, &state))
		return state;

	txb_monitor_wait_begin(fxid);
	PG_TRY();
	{
		state = txb_wait_blocking(fxid, has_deadline, deadline);
	}
	PG_FINALLY();
	{
		txb_standby_release();
		txb_monitor_wait_end();
	}
	PG_END_TRY();

	return state;
}

/*
 * In REPEATABLE READ and SERIALIZABLE the transaction snapshot was taken
 * before the wait (at the latest by the statement that waits), so a commit
 * we waited for stays invisible to the rest of the transaction.  Say so:
 * reading after the wait would silently miss the rows the barrier guards.
 */
void
txb_warn_if_snapshot_hides(FullTransactionId fxid, TxbState state)
{
	if (state != TXB_COMMITTED || !IsolationUsesXactSnapshot() ||
		!FirstSnapshotSet)
		return;

	if (XidInMVCCSnapshot(XidFromFullTransactionId(fxid),
						  GetTransactionSnapshot()))
		ereport(WARNING,
				(errcode(ERRCODE_WARNING),
				 errmsg("barrier transaction committed after this transaction's snapshot was taken"),
				 errdetail("Its changes are not visible for the rest of this %s transaction.",
						   IsolationIsSerializable() ? "SERIALIZABLE" : "REPEATABLE READ"),
				 errhint("Wait first, then read: call barrier_wait() in autocommit or in a READ COMMITTED transaction before starting the one that reads.")));
}
