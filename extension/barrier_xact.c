/*-------------------------------------------------------------------------
 *
 * barrier_xact.c
 *		Following the transactions that enqueued barriers.
 *
 * A transaction callback and a subtransaction callback keep per-backend
 * bookkeeping of the current transaction's barriers: how many tokens each
 * subtransaction level enqueued.  When a barrier (sub)transaction ends they
 * count the outcome of its tokens.
 *
 * The callbacks run for every transaction of every backend that loaded the
 * library, so they return at once when the transaction enqueued nothing.
 * At COMMIT/ABORT time interrupts are held and the transaction is over: the
 * code below only touches static variables and counters; nothing can ERROR.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "utils/memutils.h"

#include "barrier_internal.h"

/*
 * Tokens enqueued at one subtransaction nesting level of the current
 * transaction.  The stack is ordered by level: deeper levels end first.
 */
typedef struct TxbLevelCount
{
	int			nest_level;
	uint64		tokens;
} TxbLevelCount;

/*
 * The current transaction's barrier stack.  The array lives in
 * TopMemoryContext and is only grown by barrier_enqueue(), never in a
 * callback, so ending a transaction allocates nothing.
 */
static TxbLevelCount *txb_levels = NULL;
static int	txb_levels_used = 0;
static int	txb_levels_size = 0;

/* Sum of the tokens at nesting levels >= level, popping them. */
static uint64
txb_levels_pop(int level)
{
	uint64		tokens = 0;

	while (txb_levels_used > 0 &&
		   txb_levels[txb_levels_used - 1].nest_level >= level)
		tokens += txb_levels[--txb_levels_used].tokens;
	return tokens;
}

static void
txb_xact_callback(XactEvent event, void *arg)
{
	uint64		tokens;

	/* The common case: this transaction enqueued nothing. */
	if (txb_levels_used == 0)
		return;

	switch (event)
	{
		case XACT_EVENT_COMMIT:
		case XACT_EVENT_PARALLEL_COMMIT:
			tokens = txb_levels_pop(0);
			txb_count(TXB_C_ENQUEUED_COMMITTED, tokens);
			break;
		case XACT_EVENT_ABORT:
		case XACT_EVENT_PARALLEL_ABORT:
			tokens = txb_levels_pop(0);
			txb_count(TXB_C_ENQUEUED_ABORTED, tokens);
			break;
		case XACT_EVENT_PREPARE:
			/* The outcome is decided later, possibly by another backend. */
			(void) txb_levels_pop(0);
			break;
		default:
			/* PRE_COMMIT / PRE_PREPARE: the transaction is not over yet. */
			break;
	}
}

/*
 * A subtransaction that aborts takes its tokens (and its children's) with
 * it: they now read "aborted".  One that commits hands them to its parent,
 * whose fate they follow.
 */
static void
txb_subxact_callback(SubXactEvent event, SubTransactionId mySubid,
					 SubTransactionId parentSubid, void *arg)
{
	int			level;
	uint64		tokens;

	if (txb_levels_used == 0)
		return;

	level = GetCurrentTransactionNestLevel();
	switch (event)
	{
		case SUBXACT_EVENT_ABORT_SUB:
			txb_count(TXB_C_ENQUEUED_ABORTED, txb_levels_pop(level));
			break;
		case SUBXACT_EVENT_COMMIT_SUB:
			tokens = txb_levels_pop(level);
			if (tokens == 0)
				break;
			/* Room is guaranteed: we just popped at least one entry. */
			if (txb_levels_used > 0 &&
				txb_levels[txb_levels_used - 1].nest_level == level - 1)
				txb_levels[txb_levels_used - 1].tokens += tokens;
			else
			{
				txb_levels[txb_levels_used].nest_level = level - 1;
				txb_levels[txb_levels_used].tokens = tokens;
				txb_levels_used++;
			}
			break;
		default:
			break;
	}
}

/* Called by barrier_enqueue() once a token has been handed out. */
void
txb_xact_note_enqueue(void)
{
	int			level = GetCurrentTransactionNestLevel();

	if (txb_levels_used > 0 &&
		txb_levels[txb_levels_used - 1].nest_level == level)
		txb_levels[txb_levels_used - 1].tokens++;
	else
	{
		if (txb_levels_used == txb_levels_size)
		{
			int			newsize = Max(8, txb_levels_size * 2);

			if (txb_levels == NULL)
				txb_levels = MemoryContextAlloc(TopMemoryContext,
												newsize * sizeof(TxbLevelCount));
			else
				txb_levels = repalloc(txb_levels,
									  newsize * sizeof(TxbLevelCount));
			txb_levels_size = newsize;
		}
		txb_levels[txb_levels_used].nest_level = level;
		txb_levels[txb_levels_used].tokens = 1;
		txb_levels_used++;
	}
	txb_count(TXB_C_ENQUEUED, 1);
}

/* From _PG_init. */
void
txb_xact_init(void)
{
	RegisterXactCallback(txb_xact_callback, NULL);
	RegisterSubXactCallback(txb_subxact_callback, NULL);
}
