/*-------------------------------------------------------------------------
 *
 * barrier_internal.h
 *		Declarations shared by the tx_barrier extension's modules.
 *
 * (The client library's public header is client/tx_barrier.h; this one is
 * the server module's, and is never installed.)
 *
 * A barrier token is the FullTransactionId of the (sub)transaction that
 * called barrier_enqueue().  Waiting on it means waiting until that
 * transaction has ended, then reading its outcome from the commit log.
 *
 *-------------------------------------------------------------------------
 */
#ifndef BARRIER_INTERNAL_H
#define BARRIER_INTERNAL_H

#include "access/transam.h"
#include "datatype/timestamp.h"

#include "barrier_compat.h"

/* Outcome of a token's transaction; order matches the barrier_state enum. */
typedef enum TxbState
{
	TXB_IN_PROGRESS,
	TXB_COMMITTED,
	TXB_ABORTED
} TxbState;

#define TXB_NUM_STATES	(TXB_ABORTED + 1)

/* How barrier_status() and the waiters classify a token before waiting. */
typedef enum TxbLookup
{
	TXB_LOOKUP_DONE,			/* *state holds the final outcome */
	TXB_LOOKUP_RUNNING,			/* another transaction, still in progress */
	TXB_LOOKUP_OWN,				/* the caller's own (sub)transaction */
	TXB_LOOKUP_NOT_YET_SEEN		/* on a standby: not replayed yet */
} TxbLookup;

/* GUCs (tx_barrier.c) */
extern bool txb_durable_tokens;
extern bool txb_token_reservation;

/* barrier_state.c */
extern TxbLookup txb_lookup(FullTransactionId fxid, TxbState *state);
extern void txb_state_datums(Oid enumtype, Datum *values);

/* barrier_token.c */
extern FullTransactionId txb_enqueue(void);
extern bool txb_token_wal_durable(XLogRecPtr lsn);

/* barrier_reserve.c */
extern void txb_reserve_init(void);
extern bool txb_reserve_cover(FullTransactionId fxid);

/* barrier_wait.c */
extern TxbState txb_wait(FullTransactionId fxid, bool has_deadline,
						 TimestampTz deadline);
extern void txb_warn_if_snapshot_hides(FullTransactionId fxid, TxbState state);

/* barrier_wait_any.c */
extern int	txb_wait_any_max_tokens;
extern int	txb_wait_any_recheck_ms;
extern void txb_any_init(void);
extern void txb_any_unique(uint64 *tokens, int *ntokens);
extern int	txb_any_find(const uint64 *tokens, int ntokens, uint64 token);
extern int	txb_wait_any(const uint64 *tokens, int ntokens, bool has_deadline,
						 TimestampTz deadline, TxbState *state, bool *answered);
struct ReturnSetInfo;
extern void txb_any_report_waiters(struct ReturnSetInfo *rsinfo);

/* barrier_xact.c */
extern void txb_xact_init(void);
extern void txb_xact_note_enqueue(void);

/* barrier_monitor.c */
typedef enum TxbCounter
{
	TXB_C_ENQUEUED,
	TXB_C_ENQUEUED_COMMITTED,
	TXB_C_ENQUEUED_ABORTED,
	TXB_C_TOKEN_RECORDS,
	TXB_C_TOKENS_COVERED,
	TXB_C_WAITS,
	TXB_C_WAITS_COMMITTED,
	TXB_C_WAITS_ABORTED,
	TXB_C_WAITS_TIMED_OUT,
	TXB_NUM_COUNTERS
} TxbCounter;

extern void txb_monitor_init(void);
extern void txb_count(TxbCounter c, uint64 delta);
extern void txb_count_wait(TxbState state);
extern void txb_monitor_wait_begin(FullTransactionId fxid);
extern void txb_monitor_wait_end(void);

/* barrier_standby.c */
extern void txb_standby_init(void);
extern XLogRecPtr txb_standby_seen(void);
extern void txb_standby_sleep(XLogRecPtr seen, bool has_deadline,
							  TimestampTz deadline);
extern void txb_standby_release(void);

#endif							/* BARRIER_INTERNAL_H */
