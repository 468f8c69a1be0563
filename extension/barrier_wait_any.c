/*-------------------------------------------------------------------------
 *
 * barrier_wait_any.c
 *		Waiting, without polling, until the first of many tokens' transactions
 *		has ended (barrier_wait_any).
 *
 * A backend sleeps on one heavyweight lock at a time, so the xid-lock wait
 * of barrier_wait cannot serve "any of these".  Instead, with tx_barrier in
 * shared_preload_libraries, a shared registry maps each token that a
 * session waits on to the set of sessions waiting on it, and the ending
 * transaction wakes them by their latch:
 *
 * - Every backend loads the library at start (preloading), so every
 *	 transaction end runs our resource-release callback.  Once a top-level
 *	 transaction has committed or aborted, or a subtransaction has been
 *	 rolled back, and after it has released its locks (so at the moment a
 *	 lock waiter of barrier_wait would be woken, after the transaction left
 *	 the proc array and sent its invalidations), the callback looks up the
 *	 xids whose outcome is now decided -- its own and those of the
 *	 subtransactions released into it -- and sets the latch of each session
 *	 waiting on one of them.  When nobody waits at all this is one atomic
 *	 read; otherwise a hash lookup per xid under a shared LWLock.  Nothing
 *	 there can ERROR.
 * - COMMIT PREPARED and ROLLBACK PREPARED end a transaction on behalf of a
 *	 dummy PGPROC, with no callback of the prepared transaction's own: a
 *	 ProcessUtility hook wakes every waiting session after either has run
 *	 (rare, and each woken session only looks again).
 * - As a safety net against any end that reaches no callback, a waiter
 *	 also looks again every tx_barrier.wait_any_recheck_interval (default
 *	 1 s; 0 turns it off).  No answer depends on it.
 *
 * The waiter registers its running tokens before it looks at them: an end
 * that happens before the registration is seen by that look, one after it
 * finds the registration (the registry's LWLock orders the two).
 *
 * On a hot standby transactions end by WAL replay, which runs no callback
 * of ours; there the waiter sleeps until replay has advanced and looks
 * again, exactly as barrier_wait does (barrier_standby.c), which also works
 * without preloading.
 *
 * Locking: the registry (hash table and per-backend slots) is protected by
 * one LWLock; the count of waiting sessions is an atomic read without it.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "access/xlog.h"
#include "miscadmin.h"
#include "nodes/execnodes.h"
#include "nodes/parsenodes.h"
#include "port/atomics.h"
#include "port/pg_bitutils.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/lwlock.h"
#include "storage/proc.h"
#include "storage/shmem.h"
#include "tcop/utility.h"
#include "utils/guc.h"
#include "utils/hsearch.h"
#include "utils/resowner.h"
#include "utils/timestamp.h"
#include "utils/tuplestore.h"
#include "utils/xid8.h"

#include "barrier_internal.h"

#define TXB_ANY_TRANCHE		"tx_barrier wait_any"

/* GUCs (defined in tx_barrier.c) */
int			txb_wait_any_max_tokens = 8192;
int			txb_wait_any_recheck_ms = 1000;

/* One waiting session. */
typedef struct TxbAnySlot
{
	bool		active;
	int			pid;
	TimestampTz since;
	Latch	   *latch;
} TxbAnySlot;

typedef struct TxbAnyShared
{
	LWLock	   *lock;
	pg_atomic_uint32 nwaiting;	/* sessions registered: 0 is the fast path */
	int			nslots;
	int			nwords;			/* uint64 words of a waiter bitmap */
	TxbAnySlot	slots[FLEXIBLE_ARRAY_MEMBER];
} TxbAnyShared;

/* A token somebody waits on, and a bitmap of the slots waiting on it. */
typedef struct TxbAnyEntry
{
	uint64		token;			/* hash key: U64FromFullTransactionId */
	int			nwaiters;
	uint64		waiters[FLEXIBLE_ARRAY_MEMBER];
} TxbAnyEntry;

/* NULL unless preloaded. */
static TxbAnyShared *txb_any = NULL;
static HTAB *txb_any_hash = NULL;

/* This backend is registered (for the exit callback). */
static bool txb_any_registered = false;
static bool txb_any_exit_registered = false;

/* Set by the transaction callbacks: wake after the locks are released. */
static bool txb_any_end_pending = false;

static shmem_request_hook_type txb_any_prev_shmem_request_hook = NULL;
static shmem_startup_hook_type txb_any_prev_shmem_startup_hook = NULL;
static ProcessUtility_hook_type txb_any_prev_process_utility = NULL;

static int
txb_any_nwords(void)
{
	return (TXB_BACKEND_SLOTS + 63) / 64;
}

static Size
txb_any_entry_size(void)
{
	return add_size(offsetof(TxbAnyEntry, waiters),
					mul_size(txb_any_nwords(), sizeof(uint64)));
}

static Size
txb_any_shared_size(void)
{
	return add_size(offsetof(TxbAnyShared, slots),
					mul_size(TXB_BACKEND_SLOTS, sizeof(TxbAnySlot)));
}

static void
txb_any_shmem_request(void)
{
	if (txb_any_prev_shmem_request_hook)
		txb_any_prev_shmem_request_hook();
	RequestAddinShmemSpace(txb_any_shared_size());
	RequestAddinShmemSpace(hash_estimate_size(txb_wait_any_max_tokens,
											  txb_any_entry_size()));
	RequestNamedLWLockTranche(TXB_ANY_TRANCHE, 1);
}

static void
txb_any_shmem_startup(void)
{
	bool		found;
	HASHCTL		info;

	if (txb_any_prev_shmem_startup_hook)
		txb_any_prev_shmem_startup_hook();

	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	txb_any = ShmemInitStruct("tx_barrier wait_any", txb_any_shared_size(),
							  &found);
	if (!found)
	{
		txb_any->lock = &(GetNamedLWLockTranche(TXB_ANY_TRANCHE))->lock;
		pg_atomic_init_u32(&txb_any->nwaiting, 0);
		txb_any->nslots = TXB_BACKEND_SLOTS;
		txb_any->nwords = txb_any_nwords();
		for (int i = 0; i < txb_any->nslots; i++)
		{
			txb_any->slots[i].active = false;
			txb_any->slots[i].pid = 0;
			txb_any->slots[i].since = 0;
			txb_any->slots[i].latch = NULL;
		}
	}
	memset(&info, 0, sizeof(info));
	info.keysize = sizeof(uint64);
	info.entrysize = txb_any_entry_size();
	txb_any_hash = txb_compat_shmem_init_hash("tx_barrier wait_any tokens",
											  txb_wait_any_max_tokens,
											  &info, HASH_ELEM | HASH_BLOBS);
	LWLockRelease(AddinShmemInitLock);
}

/* Sets the latch of every slot in an entry's bitmap.  Lock held. */
static void
txb_any_wake_entry(const TxbAnyEntry *entry)
{
	for (int w = 0; w < txb_any->nwords; w++)
	{
		uint64		bits = entry->waiters[w];

		while (bits != 0)
		{
			int			bit = pg_rightmost_one_pos64(bits);
			TxbAnySlot *slot = &txb_any->slots[w * 64 + bit];

			bits &= bits - 1;
			if (slot->active && slot->latch != NULL)
				SetLatch(slot->latch);
		}
	}
}

/*
 * Wakes the sessions waiting on the xids whose outcome the (sub)transaction
 * that is ending has just decided: its own and those of the subtransactions
 * released into it.  Called after its locks are released; never errors.
 */
static void
txb_any_wake_ending(void)
{
	FullTransactionId self = GetCurrentFullTransactionIdIfAny();
	TransactionId *children;
	int			nchildren;
	uint64		key;

	if (!FullTransactionIdIsValid(self))
		return;

	/*
	 * Pairs with the waiter's increment before it looks: either it sees our
	 * end in the proc array, or we see it counted.
	 */
	pg_memory_barrier();
	if (pg_atomic_read_u32(&txb_any->nwaiting) == 0)
		return;

	nchildren = xactGetCommittedChildren(&children);

	LWLockAcquire(txb_any->lock, LW_SHARED);
	for (int i = -1; i < nchildren; i++)
	{
		TxbAnyEntry *entry;

		if (i < 0)
			key = U64FromFullTransactionId(self);
		else
		{
			/*
			 * A child's xid was assigned after its parent's, so it is in the
			 * parent's epoch unless the 32-bit counter wrapped in between.
			 */
			uint32		epoch = EpochFromFullTransactionId(self);

			if (children[i] < XidFromFullTransactionId(self))
				epoch++;
			key = U64FromFullTransactionId(FullTransactionIdFromEpochAndXid(epoch,
																			children[i]));
		}
		entry = hash_search(txb_any_hash, &key, HASH_FIND, NULL);
		if (entry != NULL)
			txb_any_wake_entry(entry);
	}
	LWLockRelease(txb_any->lock);
}

/* Wakes every waiting session (a prepared transaction has ended). */
static void
txb_any_wake_all(void)
{
	pg_memory_barrier();
	if (txb_any == NULL || pg_atomic_read_u32(&txb_any->nwaiting) == 0)
		return;

	LWLockAcquire(txb_any->lock, LW_SHARED);
	for (int i = 0; i < txb_any->nslots; i++)
	{
		TxbAnySlot *slot = &txb_any->slots[i];

		if (slot->active && slot->latch != NULL)
			SetLatch(slot->latch);
	}
	LWLockRelease(txb_any->lock);
}

static void
txb_any_xact_callback(XactEvent event, void *arg)
{
	switch (event)
	{
		case XACT_EVENT_COMMIT:
		case XACT_EVENT_ABORT:
			txb_any_end_pending = true;
			break;
		default:
			/* Parallel workers end no xid of their own; PREPARE ends none. */
			break;
	}
}

static void
txb_any_subxact_callback(SubXactEvent event, SubTransactionId mySubid,
						 SubTransactionId parentSubid, void *arg)
{
	/* A released subtransaction follows its parent: nothing ends yet. */
	if (event == SUBXACT_EVENT_ABORT_SUB)
		txb_any_end_pending = true;
}

/*
 * The first release callback after the locks of an ending (sub)transaction
 * are gone: the moment its lock waiters are woken.  The transaction state
 * (xids, committed children) is only cleaned up after this.
 */
static void
txb_any_release_callback(ResourceReleasePhase phase, bool isCommit,
						 bool isTopLevel, void *arg)
{
	if (phase != RESOURCE_RELEASE_AFTER_LOCKS || !txb_any_end_pending)
		return;
	txb_any_end_pending = false;
	txb_any_wake_ending();
}

/* COMMIT PREPARED and ROLLBACK PREPARED: wake everybody once it is done. */
static void
txb_any_process_utility(PlannedStmt *pstmt, const char *queryString,
						bool readOnlyTree, ProcessUtilityContext context,
						ParamListInfo params, QueryEnvironment *queryEnv,
						DestReceiver *dest, QueryCompletion *qc)
{
	Node	   *parsetree = pstmt->utilityStmt;
	bool		ends_prepared = false;

	if (IsA(parsetree, TransactionStmt))
	{
		TransactionStmtKind kind = ((TransactionStmt *) parsetree)->kind;

		ends_prepared = (kind == TRANS_STMT_COMMIT_PREPARED ||
						 kind == TRANS_STMT_ROLLBACK_PREPARED);
	}

	if (txb_any_prev_process_utility)
		txb_any_prev_process_utility(pstmt, queryString, readOnlyTree, context,
									 params, queryEnv, dest, qc);
	else
		standard_ProcessUtility(pstmt, queryString, readOnlyTree, context,
								params, queryEnv, dest, qc);

	if (ends_prepared)
		txb_any_wake_all();
}

/* From _PG_init: the registry and its hooks exist only when preloaded. */
void
txb_any_init(void)
{
	if (!process_shared_preload_libraries_in_progress)
		return;
	txb_any_prev_shmem_request_hook = shmem_request_hook;
	shmem_request_hook = txb_any_shmem_request;
	txb_any_prev_shmem_startup_hook = shmem_startup_hook;
	shmem_startup_hook = txb_any_shmem_startup;
	txb_any_prev_process_utility = ProcessUtility_hook;
	ProcessUtility_hook = txb_any_process_utility;
	RegisterXactCallback(txb_any_xact_callback, NULL);
	RegisterSubXactCallback(txb_any_subxact_callback, NULL);
	RegisterResourceReleaseCallback(txb_any_release_callback, NULL);
}

/*
 * Removes this backend from the entries of tokens[0..ntokens-1], or from
 * every entry when tokens is NULL (at exit, where the list is not at hand).
 */
static void
txb_any_unregister(const uint64 *tokens, int ntokens)
{
	int			slotno = TxbMyBackendSlot();
	int			word = slotno / 64;
	uint64		mask = UINT64CONST(1) << (slotno % 64);
	HASH_SEQ_STATUS seq;
	TxbAnyEntry *entry;

	if (!txb_any_registered)
		return;

	LWLockAcquire(txb_any->lock, LW_EXCLUSIVE);
	if (tokens != NULL)
	{
		for (int i = 0; i < ntokens; i++)
		{
			entry = hash_search(txb_any_hash, &tokens[i], HASH_FIND, NULL);
			if (entry == NULL || (entry->waiters[word] & mask) == 0)
				continue;
			entry->waiters[word] &= ~mask;
			if (--entry->nwaiters == 0)
				(void) hash_search(txb_any_hash, &tokens[i], HASH_REMOVE, NULL);
		}
	}
	else
	{
		hash_seq_init(&seq, txb_any_hash);
		while ((entry = hash_seq_search(&seq)) != NULL)
		{
			if ((entry->waiters[word] & mask) == 0)
				continue;
			entry->waiters[word] &= ~mask;
			if (--entry->nwaiters == 0)
				(void) hash_search(txb_any_hash, &entry->token, HASH_REMOVE,
								   NULL);
		}
	}
	txb_any->slots[slotno].active = false;
	txb_any->slots[slotno].latch = NULL;
	LWLockRelease(txb_any->lock);

	pg_atomic_fetch_sub_u32(&txb_any->nwaiting, 1);
	txb_any_registered = false;
}

static void
txb_any_exit(int code, Datum arg)
{
	txb_any_unregister(NULL, 0);
}

/*
 * Registers this backend as waiting on tokens[0..ntokens-1] (distinct).
 * Errors out, registering nothing, when the registry is full.
 */
static void
txb_any_register(const uint64 *tokens, int ntokens)
{
	int			slotno = TxbMyBackendSlot();
	int			word = slotno / 64;
	uint64		mask = UINT64CONST(1) << (slotno % 64);
	int			done = 0;

	Assert(!txb_any_registered);
	if (slotno < 0 || slotno >= txb_any->nslots)
		elog(ERROR, "tx_barrier: backend slot %d out of range", slotno);

	if (!txb_any_exit_registered)
	{
		before_shmem_exit(txb_any_exit, (Datum) 0);
		txb_any_exit_registered = true;
	}

	/* Counted first: see txb_any_wake_ending. */
	pg_atomic_fetch_add_u32(&txb_any->nwaiting, 1);
	txb_any_registered = true;

	LWLockAcquire(txb_any->lock, LW_EXCLUSIVE);
	for (; done < ntokens; done++)
	{
		TxbAnyEntry *entry;
		bool		found;

		entry = hash_search(txb_any_hash, &tokens[done], HASH_FIND, NULL);
		if (entry == NULL)
		{
			if (hash_get_num_entries(txb_any_hash) >= txb_wait_any_max_tokens)
				break;
			entry = hash_search(txb_any_hash, &tokens[done], HASH_ENTER_NULL,
								&found);
			if (entry == NULL)
				break;
			entry->nwaiters = 0;
			memset(entry->waiters, 0, txb_any->nwords * sizeof(uint64));
		}
		if ((entry->waiters[word] & mask) == 0)
		{
			entry->waiters[word] |= mask;
			entry->nwaiters++;
		}
	}
	txb_any->slots[slotno].pid = MyProcPid;
	txb_any->slots[slotno].since = GetCurrentTimestamp();
	txb_any->slots[slotno].latch = MyLatch;
	txb_any->slots[slotno].active = true;
	LWLockRelease(txb_any->lock);

	if (done < ntokens)
	{
		txb_any_unregister(tokens, done);
		ereport(ERROR,
				(errcode(ERRCODE_CONFIGURATION_LIMIT_EXCEEDED),
				 errmsg("too many tokens waited on by barrier_wait_any() calls"),
				 errdetail("All sessions together may wait on at most %d distinct running tokens.",
						   txb_wait_any_max_tokens),
				 errhint("Wait on fewer tokens per call, or raise tx_barrier.max_wait_any_tokens (needs a restart).")));
	}
}

/* Orders tokens by value, for removing duplicates. */
static int
txb_any_cmp(const void *a, const void *b)
{
	uint64		x = *(const uint64 *) a;
	uint64		y = *(const uint64 *) b;

	return (x > y) - (x < y);
}

/*
 * One look at every distinct token: fills state[] and answered[], returns
 * how many were answered.  A token is answered once it has ended, and at
 * once when it is the caller's own (which cannot end while we wait, and
 * which barrier_wait answers "in progress").
 */
static int
txb_any_look(const uint64 *tokens, int ntokens, TxbState *state,
			 bool *answered)
{
	int			nanswered = 0;

	for (int i = 0; i < ntokens; i++)
	{
		switch (txb_lookup(FullTransactionIdFromU64(tokens[i]), &state[i]))
		{
			case TXB_LOOKUP_DONE:
				answered[i] = true;
				break;
			case TXB_LOOKUP_OWN:
				state[i] = TXB_IN_PROGRESS;
				answered[i] = true;
				break;
			case TXB_LOOKUP_NOT_YET_SEEN:
			case TXB_LOOKUP_RUNNING:
				state[i] = TXB_IN_PROGRESS;
				answered[i] = false;
				break;
		}
		if (answered[i])
			nanswered++;
	}
	return nanswered;
}

/* Milliseconds to sleep on the primary: the re-check interval, the deadline. */
static long
txb_any_sleep_ms(bool has_deadline, TimestampTz deadline)
{
	long		ms = txb_wait_any_recheck_ms > 0 ? txb_wait_any_recheck_ms : -1;

	if (has_deadline)
	{
		long		remaining = TimestampDifferenceMilliseconds(GetCurrentTimestamp(),
																deadline);

		remaining = Max(remaining, 1);
		ms = ms < 0 ? remaining : Min(ms, remaining);
	}
	return ms;
}

/*
 * Sleep until the transaction of at least one of tokens[0..ntokens-1] has
 * ended, or the deadline passed.  tokens are distinct and sorted; state[i]
 * and answered[i] describe tokens[i] at the last look.  Returns the number
 * of answered tokens: 0 only when the deadline passed (or there are no
 * tokens).
 */
int
txb_wait_any(const uint64 *tokens, int ntokens, bool has_deadline,
			 TimestampTz deadline, TxbState *state, bool *answered)
{
	int			nanswered;
	uint64	   *running;
	int			nrunning = 0;

	if (ntokens == 0)
		return 0;

	/* Ended tokens, the common case, cost one look each and no sleep. */
	nanswered = txb_any_look(tokens, ntokens, state, answered);
	if (nanswered > 0 ||
		(has_deadline && GetCurrentTimestamp() >= deadline))
		return nanswered;

	if (!RecoveryInProgress() && txb_any == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("barrier_wait_any() requires tx_barrier in shared_preload_libraries to wait"),
				 errdetail("No token has ended yet, and only a preloaded tx_barrier is woken when the first of them ends."),
				 errhint("Add tx_barrier to shared_preload_libraries and restart the server, or wait on one token at a time with barrier_wait().")));

	running = palloc(ntokens * sizeof(uint64));
	for (int i = 0; i < ntokens; i++)
		if (!answered[i])
			running[nrunning++] = tokens[i];

	if (txb_any != NULL)
		txb_any_register(running, nrunning);

	PG_TRY();
	{
		for (;;)
		{
			XLogRecPtr	seen = txb_standby_seen();
			long		sleep_ms;

			ResetLatch(MyLatch);
			nanswered = txb_any_look(tokens, ntokens, state, answered);
			if (nanswered > 0)
				break;
			if (has_deadline && GetCurrentTimestamp() >= deadline)
				break;

			if (RecoveryInProgress())
				txb_standby_sleep(seen, has_deadline, deadline);
			else
			{
				/* Promoted while we waited on a standby. */
				txb_standby_release();
				if (txb_any == NULL)
					ereport(ERROR,
							(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
							 errmsg("barrier_wait_any() requires tx_barrier in shared_preload_libraries to wait"),
							 errdetail("The server was promoted while the call waited."),
							 errhint("Add tx_barrier to shared_preload_libraries and restart the server, or wait on one token at a time with barrier_wait().")));
				sleep_ms = txb_any_sleep_ms(has_deadline, deadline);
				(void) WaitLatch(MyLatch,
								 WL_LATCH_SET | WL_EXIT_ON_PM_DEATH |
								 (sleep_ms >= 0 ? WL_TIMEOUT : 0),
								 sleep_ms, txb_compat_wait_any_event());
				CHECK_FOR_INTERRUPTS();
			}
		}
	}
	PG_FINALLY();
	{
		txb_standby_release();
		if (txb_any != NULL)
			txb_any_unregister(running, nrunning);
	}
	PG_END_TRY();

	pfree(running);
	return nanswered;
}

/*
 * Sorts tokens[0..*ntokens-1] and removes duplicates.
 */
void
txb_any_unique(uint64 *tokens, int *ntokens)
{
	int			n = 0;

	if (*ntokens <= 1)
		return;
	qsort(tokens, *ntokens, sizeof(uint64), txb_any_cmp);
	for (int i = 0; i < *ntokens; i++)
		if (n == 0 || tokens[n - 1] != tokens[i])
			tokens[n++] = tokens[i];
	*ntokens = n;
}

/* Index of token in the sorted, distinct tokens[0..ntokens-1]. */
int
txb_any_find(const uint64 *tokens, int ntokens, uint64 token)
{
	const uint64 *hit = bsearch(&token, tokens, ntokens, sizeof(uint64),
								txb_any_cmp);

	Assert(hit != NULL);
	return (int) (hit - tokens);
}

/*
 * For barrier_waiters(): one row (pid, token, since) per token each session
 * in barrier_wait_any() waits on.  Nothing when not preloaded.
 */
void
txb_any_report_waiters(struct ReturnSetInfo *rsinfo)
{
	HASH_SEQ_STATUS seq;
	TxbAnyEntry *entry;

	if (txb_any == NULL)
		return;

	LWLockAcquire(txb_any->lock, LW_SHARED);
	hash_seq_init(&seq, txb_any_hash);
	while ((entry = hash_seq_search(&seq)) != NULL)
	{
		for (int w = 0; w < txb_any->nwords; w++)
		{
			uint64		bits = entry->waiters[w];

			while (bits != 0)
			{
				TxbAnySlot *slot = &txb_any->slots[w * 64 + pg_rightmost_one_pos64(bits)];
				Datum		values[3];
				bool		nulls[3] = {false, false, false};

				bits &= bits - 1;
				if (!slot->active)
					continue;
				values[0] = Int32GetDatum(slot->pid);
				values[1] = FullTransactionIdGetDatum(FullTransactionIdFromU64(entry->token));
				values[2] = TimestampTzGetDatum(slot->since);
				tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc,
									 values, nulls);
			}
		}
	}
	LWLockRelease(txb_any->lock);
}
