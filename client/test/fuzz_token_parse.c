/*
 * fuzz_token_parse.c - libFuzzer target for txb_token_parse().
 *
 * Checks, for any input, that parsing never crashes and that it accepts
 * exactly the non-empty strings of ASCII digits whose value fits in 64 bits,
 * and that such a value formats back to the input without leading zeros.
 * Build and run: make fuzz (FUZZ_SECONDS=20).
 */
#include "tx_barrier.h"

#include <stdlib.h>
#include <string.h>

int			LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Reference check, digit by digit, with 128-bit-free overflow detection. */
static int
expect_valid(const char *s, size_t len)
{
	const char *p = s;
	size_t		i;
	size_t		sig;

	if (len == 0)
		return 0;
	for (i = 0; i < len; i++)
		if (s[i] < '0' || s[i] > '9')
			return 0;
	while (*p == '0' && (size_t) (p - s) < len - 1)
		p++;
	sig = len - (size_t) (p - s);
	if (sig < TXB_TOKEN_MAXLEN)
		return 1;
	if (sig > TXB_TOKEN_MAXLEN)
		return 0;
	return strncmp(p, "18446744073709551615", TXB_TOKEN_MAXLEN) <= 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char	   *text = malloc(size + 1);
	size_t		len;
	txb_token	token = 42;
	int			rc;

	if (text == NULL)
		return 0;
	if (size > 0)
		memcpy(text, data, size);
	text[size] = '\0';
	len = strlen(text);			/* parsing stops at an embedded NUL */

	rc = txb_token_parse(text, &token);
	if (rc != 0 && rc != -1)
		abort();
	if ((rc == 0) != expect_valid(text, len))
		abort();
	if (rc == -1)
	{
		if (token != 42 || txb_error_code() != TXB_ERR_ARGUMENT ||
			txb_error_message()[0] == '\0')
			abort();
	}
	else
	{
		char		buf[TXB_TOKEN_BUFSIZE];
		const char *canon = text;
		int			n = txb_token_format(token, buf, sizeof(buf));

		while (*canon == '0' && canon[1] != '\0')
			canon++;
		if (n < 1 || (size_t) n != strlen(canon) || strcmp(buf, canon) != 0)
			abort();
	}
	free(text);
	return 0;
}
