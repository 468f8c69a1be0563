/*-------------------------------------------------------------------------
 *
 * barrier_compat.h
 *		Every difference between the PostgreSQL majors tx_barrier supports
 *		(15 to 19), in one place.
 *
 * The rest of the extension is written against one API; each difference
 * below is either a rename (mapped onto one name) or a newer facility that
 * older majors lack (a function that tells the caller so, with the older
 * behaviour as the fallback).  Keep the #if's here and only here.
 *
 *-------------------------------------------------------------------------
 */
#ifndef BARRIER_COMPAT_H
#define BARRIER_COMPAT_H

#include "access/transam.h"
#include "access/xlogdefs.h"
#include "storage/shmem.h"
#include "utils/hsearch.h"
#include "utils/wait_event.h"

#if PG_VERSION_NUM < 150000
#error "tx_barrier requires PostgreSQL 15 or later"
#endif

#if PG_VERSION_NUM >= 170000
#include "storage/procnumber.h"
#else
#include "storage/backendid.h"
#endif

#if PG_VERSION_NUM >= 190000
#include "access/xlogwait.h"
#endif

/*
 * Module magic: 18 lets a module name itself (pg_get_loaded_modules()).
 */
#if PG_VERSION_NUM >= 180000
#define TXB_MODULE_MAGIC	PG_MODULE_MAGIC_EXT(.name = "tx_barrier")
#else
#define TXB_MODULE_MAGIC	PG_MODULE_MAGIC
#endif

/* fmgr.h declares _PG_init from 16 on. */
#if PG_VERSION_NUM < 160000
extern void _PG_init(void);
#endif

/* 17 renamed the shared transaction-id counters. */
#if PG_VERSION_NUM >= 170000
#define TxbTransamVariables	TransamVariables
#else
#define TxbTransamVariables	ShmemVariableCache
#endif

/*
 * A slot number for this backend in a per-backend array of
 * TXB_BACKEND_SLOTS entries: the backend id (1-based) up to 16, the proc
 * number (0-based) from 17 on.  Ordinary backends fit either way.
 */
#if PG_VERSION_NUM >= 170000
#define TxbMyBackendSlot()	((int) MyProcNumber)
#else
#define TxbMyBackendSlot()	((int) MyBackendId)
#endif
#define TXB_BACKEND_SLOTS	(MaxBackends + 1)

/* The class of buffer-pin wait events: renamed in 17 and again in 19. */
#if PG_VERSION_NUM >= 190000
#define TXB_PG_WAIT_BUFFER_PIN	PG_WAIT_BUFFER
#elif PG_VERSION_NUM >= 170000
#define TXB_PG_WAIT_BUFFER_PIN	PG_WAIT_BUFFERPIN
#else
#define TXB_PG_WAIT_BUFFER_PIN	PG_WAIT_BUFFER_PIN
#endif

/*
 * The wait event a standby waiter shows while it sleeps between looks at
 * replay.  From 17 an extension can name its own ("TxBarrierStandbyWait"
 * in pg_stat_activity); before, it is the generic "Extension".
 */
static inline uint32
txb_compat_standby_wait_event(void)
{
#if PG_VERSION_NUM >= 170000
	static uint32 event = 0;

	if (event == 0)
		event = WaitEventExtensionNew("TxBarrierStandbyWait");
	return event;
#else
	return PG_WAIT_EXTENSION;
#endif
}

/*
 * The wait event of barrier_wait_any() on a primary, while it sleeps on its
 * latch: "TxBarrierWaitAny" from 17, the generic "Extension" before.
 */
static inline uint32
txb_compat_wait_any_event(void)
{
#if PG_VERSION_NUM >= 170000
	static uint32 event = 0;

	if (event == 0)
		event = WaitEventExtensionNew("TxBarrierWaitAny");
	return event;
#else
	return PG_WAIT_EXTENSION;
#endif
}

/* 19 gives ShmemInitHash one size instead of an initial and a maximum. */
static inline HTAB *
txb_compat_shmem_init_hash(const char *name, long nelems, HASHCTL *info,
						   int flags)
{
#if PG_VERSION_NUM >= 190000
	return ShmemInitHash(name, nelems, info, flags);
#else
	return ShmemInitHash(name, nelems, nelems, info, flags);
#endif
}

/* Does the startup process wake waiters for a replay position (19 on)? */
#define TXB_HAVE_REPLAY_WAKEUPS (PG_VERSION_NUM >= 190000)

/*
 * Sleep until replay has passed target, at most timeout_ms (> 0), using
 * the startup process's own wake-ups (the machinery of WAIT FOR LSN, 19 on).
 * Returns false at once when this major has no such facility; the caller
 * then polls.  Interrupts are serviced; promotion ends the sleep.
 */
static inline bool
txb_compat_sleep_until_replayed(XLogRecPtr target, long timeout_ms)
{
#if PG_VERSION_NUM >= 190000
	(void) WaitForLSN(WAIT_LSN_TYPE_STANDBY_REPLAY, target,
					  (int64) Max(timeout_ms, 1));
	return true;
#else
	(void) target;
	(void) timeout_ms;
	return false;
#endif
}

#endif							/* BARRIER_COMPAT_H */
