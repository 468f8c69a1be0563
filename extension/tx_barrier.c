/*-------------------------------------------------------------------------
 *
 * tx_barrier.c
 *		Module entry points and SQL-callable functions of tx_barrier.
 *
 * A transaction calls barrier_enqueue() and sends the token with its
 * asynchronous task to any broker, before COMMIT.  The worker calls
 * barrier_wait(token) before touching the data and learns, without
 * polling, whether the transaction committed or aborted.
 *
 * The functions here only convert arguments and results; the work is done
 * in barrier_token.c (enqueue), barrier_state.c (status), barrier_wait.c
 * (waiting) and barrier_wait_any.c (waiting for the first of many).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "catalog/pg_type.h"
#include "common/int.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"
#include "utils/timestamp.h"
#include "utils/tuplestore.h"
#include "utils/xid8.h"

#include "barrier_internal.h"

TXB_MODULE_MAGIC;

bool		txb_durable_tokens = true;
bool		txb_token_reservation = false;

void
_PG_init(void)
{
	DefineCustomBoolVariable("tx_barrier.durable_tokens",
							 "Makes each barrier token crash-safe before barrier_enqueue() returns.",
							 "When off, a token whose transaction is lost in a crash can later "
							 "name a different transaction.",
							 &txb_durable_tokens,
							 true,
							 PGC_USERSET,
							 0,
							 NULL, NULL, NULL);
	DefineCustomBoolVariable("tx_barrier.token_reservation",
							 "Makes tokens crash-safe by reserving ranges of transaction ids ahead in WAL.",
							 "One WAL record covers the tokens of many transactions.  Needs "
							 "tx_barrier in shared_preload_libraries on the primary and on "
							 "every standby.",
							 &txb_token_reservation,
							 false,
							 PGC_SIGHUP,
							 0,
							 NULL, NULL, NULL);
	DefineCustomIntVariable("tx_barrier.wait_any_recheck_interval",
							"Safety net: how often a sleeping barrier_wait_any() looks at its tokens even when not woken.",
							"Ending transactions wake the waiters; 0 turns the safety net off.",
							&txb_wait_any_recheck_ms,
							1000, 0, INT_MAX,
							PGC_USERSET,
							GUC_UNIT_MS,
							NULL, NULL, NULL);
	/* Sizes shared memory, which only exists when preloaded. */
	if (process_shared_preload_libraries_in_progress)
		DefineCustomIntVariable("tx_barrier.max_wait_any_tokens",
								"Distinct running tokens that all barrier_wait_any() calls together can wait on.",
								"Sizes a table in shared memory.",
								&txb_wait_any_max_tokens,
								8192, 16, INT_MAX / 2,
								PGC_POSTMASTER,
								0,
								NULL, NULL, NULL);
	MarkGUCPrefixReserved("tx_barrier");

	txb_xact_init();
	txb_monitor_init();
	txb_standby_init();
	txb_reserve_init();
	txb_any_init();
}

/*
 * Convert a timeout argument to a deadline.  NULL means no limit; a zero
 * timeout makes the wait a status check.
 */
static void
txb_deadline(FunctionCallInfo fcinfo, int argno, bool *has_deadline,
			 TimestampTz *deadline)
{
	Interval   *iv;
	int64		usecs;
	int64		days_usecs;
	int64		months_usecs;

	*has_deadline = false;
	*deadline = DT_NOEND;
	if (PG_ARGISNULL(argno))
		return;

	iv = PG_GETARG_INTERVAL_P(argno);
	if (pg_mul_s64_overflow((int64) iv->day, USECS_PER_DAY, &days_usecs) ||
		pg_mul_s64_overflow((int64) iv->month, DAYS_PER_MONTH * USECS_PER_DAY,
							&months_usecs) ||
		pg_add_s64_overflow(iv->time, days_usecs, &usecs) ||
		pg_add_s64_overflow(usecs, months_usecs, &usecs))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("barrier timeout is out of range")));

	if (usecs < 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("barrier timeout must not be negative"),
				 errhint("Use NULL to wait without a limit, or 0 to check the state without waiting.")));

	/* Past the end of representable time is as good as no limit. */
	if (pg_add_s64_overflow(GetCurrentTimestamp(), usecs, deadline) ||
		!IS_VALID_TIMESTAMP(*deadline))
		return;
	*has_deadline = true;
}

/*
 * The barrier_state Datum of each TxbState, looked up once per call site
 * (cached in fn_extra), not once per call: workers call these functions in
 * tight loops.  The type comes from the function's declared result: the
 * enum itself, or the "state" column of barrier_wait_all's and
 * barrier_wait_any's rows.
 */
static const Datum *
txb_labels(FunctionCallInfo fcinfo)
{
	Datum	   *labels = (Datum *) fcinfo->flinfo->fn_extra;
	TupleDesc	tupdesc;
	Oid			type;

	if (labels != NULL)
		return labels;

	if (get_call_result_type(fcinfo, &type, &tupdesc) == TYPEFUNC_COMPOSITE)
		type = TupleDescAttr(tupdesc, tupdesc->natts - 1)->atttypid;
	if (!OidIsValid(type) || !type_is_enum(type))
		elog(ERROR, "tx_barrier function must return barrier_state");

	labels = MemoryContextAlloc(fcinfo->flinfo->fn_mcxt,
								TXB_NUM_STATES * sizeof(Datum));
	txb_state_datums(type, labels);
	fcinfo->flinfo->fn_extra = labels;
	return labels;
}

/*
 * The elements of the xid8[] argument ARGNO of barrier_wait_all and
 * barrier_wait_any (not NULL: the caller checks), with their NULL flags.
 */
static void
txb_token_array(FunctionCallInfo fcinfo, int argno, Datum **elems,
				bool **nulls, int *nelems)
{
	ArrayType  *tokens = PG_GETARG_ARRAYTYPE_P(argno);

	if (ARR_NDIM(tokens) > 1)
		ereport(ERROR,
				(errcode(ERRCODE_ARRAY_SUBSCRIPT_ERROR),
				 errmsg("barrier tokens must be a one-dimensional array")));
	deconstruct_array(tokens, XID8OID, sizeof(FullTransactionId),
					  FLOAT8PASSBYVAL, TYPALIGN_DOUBLE, elems, nulls, nelems);
}

PG_FUNCTION_INFO_V1(barrier_enqueue);

/*
 * barrier_enqueue() returns xid8
 */
Datum
barrier_enqueue(PG_FUNCTION_ARGS)
{
	PG_RETURN_FULLTRANSACTIONID(txb_enqueue());
}

PG_FUNCTION_INFO_V1(barrier_status);

/*
 * barrier_status(token xid8) returns barrier_state
 */
Datum
barrier_status(PG_FUNCTION_ARGS)
{
	FullTransactionId fxid = PG_GETARG_FULLTRANSACTIONID(0);
	const Datum *labels = txb_labels(fcinfo);
	TxbState	state;

	switch (txb_lookup(fxid, &state))
	{
		case TXB_LOOKUP_DONE:
			break;
		case TXB_LOOKUP_NOT_YET_SEEN:
		case TXB_LOOKUP_RUNNING:
		case TXB_LOOKUP_OWN:
			state = TXB_IN_PROGRESS;
			break;
	}
	PG_RETURN_DATUM(labels[state]);
}

PG_FUNCTION_INFO_V1(barrier_wait);

/*
 * barrier_wait(token xid8, timeout interval DEFAULT NULL) returns barrier_state
 */
Datum
barrier_wait(PG_FUNCTION_ARGS)
{
	FullTransactionId fxid;
	bool		has_deadline;
	TimestampTz deadline;
	TxbState	state;

	/* Validate the timeout even when the token is NULL. */
	txb_deadline(fcinfo, 1, &has_deadline, &deadline);
	if (PG_ARGISNULL(0))
		PG_RETURN_NULL();
	fxid = PG_GETARG_FULLTRANSACTIONID(0);

	state = txb_wait(fxid, has_deadline, deadline);
	txb_count_wait(state);
	txb_warn_if_snapshot_hides(fxid, state);
	PG_RETURN_DATUM(txb_labels(fcinfo)[state]);
}

PG_FUNCTION_INFO_V1(barrier_wait_all);

/*
 * barrier_wait_all(tokens xid8[], timeout interval DEFAULT NULL)
 *		returns table(token xid8, state barrier_state)
 *
 * One row per array element, in array order.  The timeout bounds the whole
 * call: once it has run out, the remaining tokens are only looked up.
 */
Datum
barrier_wait_all(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	bool		has_deadline;
	TimestampTz deadline;
	Datum	   *elems;
	bool	   *elem_nulls;
	int			nelems;
	const Datum *labels;
	bool		hidden_warned = false;

	txb_deadline(fcinfo, 1, &has_deadline, &deadline);

	InitMaterializedSRF(fcinfo, 0);
	if (PG_ARGISNULL(0))
		return (Datum) 0;

	txb_token_array(fcinfo, 0, &elems, &elem_nulls, &nelems);

	labels = txb_labels(fcinfo);

	for (int i = 0; i < nelems; i++)
	{
		Datum		values[2];
		bool		nulls[2] = {false, false};

		values[0] = elems[i];
		if (elem_nulls[i])
		{
			nulls[0] = nulls[1] = true;
			values[1] = (Datum) 0;
		}
		else
		{
			FullTransactionId fxid = DatumGetFullTransactionId(elems[i]);
			TxbState	state = txb_wait(fxid, has_deadline, deadline);

			txb_count_wait(state);
			if (!hidden_warned && state == TXB_COMMITTED &&
				IsolationUsesXactSnapshot())
			{
				txb_warn_if_snapshot_hides(fxid, state);
				hidden_warned = true;
			}
			values[1] = labels[state];
		}
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc,
							 values, nulls);
	}

	return (Datum) 0;
}

PG_FUNCTION_INFO_V1(barrier_wait_any);

/*
 * barrier_wait_any(tokens xid8[], timeout interval DEFAULT NULL)
 *		returns table(token xid8, state barrier_state)
 *
 * Sleeps until at least one token's transaction has ended, then returns one
 * row for each array element whose token has ended (or is the caller's own
 * transaction, "in progress" as barrier_wait answers it), in array order;
 * duplicates are answered alike, NULL elements never.  No rows when the
 * timeout passed first, or when there is no token at all.
 */
Datum
barrier_wait_any(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	bool		has_deadline;
	TimestampTz deadline;
	Datum	   *elems;
	bool	   *elem_nulls;
	int			nelems;
	uint64	   *distinct;
	int			ndistinct = 0;
	TxbState   *states;
	bool	   *answered;
	int			nanswered;
	const Datum *labels;
	bool		hidden_warned = false;

	txb_deadline(fcinfo, 1, &has_deadline, &deadline);

	InitMaterializedSRF(fcinfo, 0);
	if (PG_ARGISNULL(0))
		return (Datum) 0;

	txb_token_array(fcinfo, 0, &elems, &elem_nulls, &nelems);

	distinct = palloc(Max(nelems, 1) * sizeof(uint64));
	for (int i = 0; i < nelems; i++)
		if (!elem_nulls[i])
			distinct[ndistinct++] =
				U64FromFullTransactionId(DatumGetFullTransactionId(elems[i]));
	txb_any_unique(distinct, &ndistinct);
	if (ndistinct == 0)
		return (Datum) 0;

	states = palloc(ndistinct * sizeof(TxbState));
	answered = palloc(ndistinct * sizeof(bool));
	nanswered = txb_wait_any(distinct, ndistinct, has_deadline, deadline,
							 states, answered);

	if (nanswered == 0)
	{
		txb_count_wait(TXB_IN_PROGRESS);
		return (Datum) 0;
	}

	labels = txb_labels(fcinfo);
	for (int i = 0; i < nelems; i++)
	{
		Datum		values[2];
		bool		nulls[2] = {false, false};
		int			k;

		if (elem_nulls[i])
			continue;
		k = txb_any_find(distinct, ndistinct,
						 U64FromFullTransactionId(DatumGetFullTransactionId(elems[i])));
		if (!answered[k])
			continue;

		txb_count_wait(states[k]);
		if (!hidden_warned && states[k] == TXB_COMMITTED &&
			IsolationUsesXactSnapshot())
		{
			txb_warn_if_snapshot_hides(FullTransactionIdFromU64(distinct[k]),
									   states[k]);
			hidden_warned = true;
		}
		values[0] = elems[i];
		values[1] = labels[states[k]];
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc,
							 values, nulls);
	}

	return (Datum) 0;
}
