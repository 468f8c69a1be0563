/*-------------------------------------------------------------------------
 *
 * barrier_standby.c
 *		Sleeping on a hot standby until replay may have ended a token's
 *		transaction.
 *
 * On a standby the primary's xid locks do not exist: a transaction's end
 * arrives by WAL replay.  A waiter looks at the token, and if it is still
 * running, sleeps until replay has passed the position it saw before that
 * look, then looks again.  How it learns that replay advanced depends on
 * what the server offers:
 *
 * - From PostgreSQL 19 the startup process wakes processes waiting for a
 *	 replay position (the machinery of WAIT FOR LSN), so each waiter sleeps
 *	 until replay passes the position it saw: no polling at all.
 * - Before 19, replay wakes nobody and somebody has to poll.  Without
 *	 shared memory (not preloaded) every waiter polls in 1 ms slices.  When
 *	 preloaded, one waiter at a time (the poller) polls the replay position
 *	 and broadcasts on a condition variable when it advanced; the others
 *	 sleep on it, so idle waiters cost nothing but a rare safety wake-up.
 *
 * A waiter holds its statement's snapshot while it sleeps, and replay may
 * have to remove rows that snapshot can see (a recovery conflict).  Replay
 * then waits for us, up to max_standby_streaming_delay, and cancels us
 * (SQLSTATE 40001): an error, not a hang.  With the delay set to -1 it
 * would wait forever, and so would we, for a commit record behind the
 * conflict: so when replay has sat in a snapshot conflict for a while and
 * no limit will ever cancel us, we end the wait with that same error.
 *
 * Locking: poller_pid is claimed and given up with compare-and-swap, and
 * replay_lsn is written only by the poller; both are atomics, so nothing
 * here takes a lock.  A poller that stops waiting (answer, timeout, error,
 * exit) gives the job up and wakes the sleepers, one of which takes it.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xlogrecovery.h"
#include "access/transam.h"
#include "miscadmin.h"
#include "port/atomics.h"
#include "storage/condition_variable.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/lwlock.h"
#include "storage/proc.h"
#include "storage/shmem.h"
#include "storage/standby.h"
#include "utils/timestamp.h"

#include "barrier_internal.h"

/* A lone standby waiter, or the shared poller, looks this often. */
#define TXB_STANDBY_SLICE_MS	1
/* Waiters sleeping on somebody else's wake-ups look at least this often. */
#define TXB_STANDBY_IDLE_MS		250

/*
 * How long replay may sit in a snapshot conflict, with no delay limit that
 * would ever cancel us, before we take it that it waits for our snapshot.
 */
#define TXB_STANDBY_CONFLICT_GRACE_MS	1000

/* The shared poller's state, when preloaded. */
typedef struct TxbReplayWake
{
	pg_atomic_uint32 poller_pid;	/* 0: nobody polls */
	pg_atomic_uint64 replay_lsn;	/* replay position the poller last saw */
	ConditionVariable replay_cv;	/* broadcast when it advanced */
} TxbReplayWake;

/* NULL unless preloaded. */
static TxbReplayWake *txb_replay = NULL;
static bool txb_standby_exit_registered = false;

static shmem_request_hook_type txb_standby_prev_request_hook = NULL;
static shmem_startup_hook_type txb_standby_prev_startup_hook = NULL;

static void
txb_standby_shmem_request(void)
{
	if (txb_standby_prev_request_hook)
		txb_standby_prev_request_hook();
	RequestAddinShmemSpace(sizeof(TxbReplayWake));
}

static void
txb_standby_shmem_startup(void)
{
	bool		found;

	if (txb_standby_prev_startup_hook)
		txb_standby_prev_startup_hook();

	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	txb_replay = ShmemInitStruct("tx_barrier standby wake-ups",
								 sizeof(TxbReplayWake), &found);
	if (!found)
	{
		pg_atomic_init_u32(&txb_replay->poller_pid, 0);
		pg_atomic_init_u64(&txb_replay->replay_lsn, 0);
		ConditionVariableInit(&txb_replay->replay_cv);
	}
	LWLockRelease(AddinShmemInitLock);
}

/*
 * From _PG_init.  The shared poller only exists where replay wakes nobody
 * and the library is preloaded.
 */
void
txb_standby_init(void)
{
	if (!process_shared_preload_libraries_in_progress ||
		TXB_HAVE_REPLAY_WAKEUPS)
		return;
	txb_standby_prev_request_hook = shmem_request_hook;
	shmem_request_hook = txb_standby_shmem_request;
	txb_standby_prev_startup_hook = shmem_startup_hook;
	shmem_startup_hook = txb_standby_shmem_startup;
}

/*
 * The replay position to compare against after the next look at a token:
 * read it before the look, so that no advance in between is missed.
 */
XLogRecPtr
txb_standby_seen(void)
{
	if (TXB_HAVE_REPLAY_WAKEUPS)
		return GetXLogReplayRecPtr(NULL);
	if (txb_replay != NULL)
		return pg_atomic_read_u64(&txb_replay->replay_lsn);
	return InvalidXLogRecPtr;
}

/* ms to sleep: at most slice_ms, and not past the deadline; at least 1. */
static long
txb_standby_sleep_ms(long slice_ms, bool has_deadline, TimestampTz deadline)
{
	if (has_deadline)
	{
		long		remaining = TimestampDifferenceMilliseconds(GetCurrentTimestamp(),
																deadline);

		slice_ms = Min(slice_ms, remaining);
	}
	return Max(slice_ms, 1);
}

/*
 * Give up the poller's job if we hold it, waking the sleepers so that one
 * of them takes it over at once.
 */
void
txb_standby_release(void)
{
	uint32		me = (uint32) MyProcPid;

	if (txb_replay != NULL &&
		pg_atomic_read_u32(&txb_replay->poller_pid) == me &&
		pg_atomic_compare_exchange_u32(&txb_replay->poller_pid, &me, 0))
		ConditionVariableBroadcast(&txb_replay->replay_cv);
}

static void
txb_standby_exit(int code, Datum arg)
{
	txb_standby_release();
}

/* Are we the poller now?  Claims the job if nobody holds it. */
static bool
txb_standby_claim_poller(void)
{
	uint32		nobody = 0;

	if (pg_atomic_read_u32(&txb_replay->poller_pid) == (uint32) MyProcPid)
		return true;
	if (!pg_atomic_compare_exchange_u32(&txb_replay->poller_pid, &nobody,
										(uint32) MyProcPid))
		return false;
	/* A poller that dies must not leave the others without one. */
	if (!txb_standby_exit_registered)
	{
		before_shmem_exit(txb_standby_exit, (Datum) 0);
		txb_standby_exit_registered = true;
	}
	return true;
}

/*
 * Is the startup process waiting for queries to release snapshots it
 * conflicts with?  Only it reports this wait event, and it reports it
 * while it sleeps between its checks.
 */
static bool
txb_standby_replay_in_snapshot_conflict(void)
{
	for (int i = MaxBackends; i < MaxBackends + NUM_AUXILIARY_PROCS; i++)
	{
		uint32		event = *(volatile uint32 *) &ProcGlobal->allProcs[i].wait_event_info;

		if (event == WAIT_EVENT_RECOVERY_CONFLICT_SNAPSHOT)
			return true;
	}
	return false;
}

/*
 * End the wait with the error replay would raise, if replay has been
 * blocked in a snapshot conflict for TXB_STANDBY_CONFLICT_GRACE_MS while we
 * hold a snapshot and no max_standby_*_delay will ever cancel us.
 */
static void
txb_standby_check_self_conflict(XLogRecPtr seen)
{
	static XLogRecPtr stalled_at = InvalidXLogRecPtr;
	static TimestampTz stalled_since = 0;

	if ((max_standby_streaming_delay >= 0 && max_standby_archive_delay >= 0) ||
		!TransactionIdIsValid(MyProc->xmin) ||
		!txb_standby_replay_in_snapshot_conflict())
	{
		stalled_since = 0;
		return;
	}

	if (stalled_since == 0 || stalled_at != seen)
	{
		stalled_at = seen;
		stalled_since = GetCurrentTimestamp();
		return;
	}
	if (!TimestampDifferenceExceeds(stalled_since, GetCurrentTimestamp(),
									TXB_STANDBY_CONFLICT_GRACE_MS))
		return;

	stalled_since = 0;
	ereport(ERROR,
			(errcode(ERRCODE_T_R_SERIALIZATION_FAILURE),
			 errmsg("canceling barrier wait: replay is blocked by a recovery conflict"),
			 errdetail("Replay must remove rows that a snapshot on this standby can still see, possibly this session's own, and max_standby_streaming_delay or max_standby_archive_delay is -1: the transaction's end would never be replayed."),
			 errhint("Set hot_standby_feedback = on or a finite max_standby_streaming_delay, or wait outside REPEATABLE READ and SERIALIZABLE transactions.")));
}

/*
 * Sleep until replay may have moved past "seen" (from txb_standby_seen()
 * before the caller's last look at the token), or the deadline.  May
 * return early; the caller looks again either way.
 */
void
txb_standby_sleep(XLogRecPtr seen, bool has_deadline, TimestampTz deadline)
{
	uint32		wait_event = txb_compat_standby_wait_event();
	XLogRecPtr	replayed;

	txb_standby_check_self_conflict(seen);

	if (txb_compat_sleep_until_replayed(seen + 1,
										txb_standby_sleep_ms(TXB_STANDBY_IDLE_MS,
															 has_deadline,
															 deadline)))
		return;

	if (txb_replay == NULL || txb_standby_claim_poller())
	{
		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 txb_standby_sleep_ms(TXB_STANDBY_SLICE_MS,
											  has_deadline, deadline),
						 wait_event);
		ResetLatch(MyLatch);
		CHECK_FOR_INTERRUPTS();

		if (txb_replay == NULL)
			return;
		replayed = GetXLogReplayRecPtr(NULL);
		if (replayed != pg_atomic_read_u64(&txb_replay->replay_lsn))
		{
			pg_atomic_write_u64(&txb_replay->replay_lsn, replayed);
			ConditionVariableBroadcast(&txb_replay->replay_cv);
		}
		return;
	}

	ConditionVariablePrepareToSleep(&txb_replay->replay_cv);
	if (pg_atomic_read_u64(&txb_replay->replay_lsn) == seen &&
		pg_atomic_read_u32(&txb_replay->poller_pid) != 0)
		(void) ConditionVariableTimedSleep(&txb_replay->replay_cv,
										   txb_standby_sleep_ms(TXB_STANDBY_IDLE_MS,
																has_deadline,
																deadline),
										   wait_event);
	ConditionVariableCancelSleep();
}
