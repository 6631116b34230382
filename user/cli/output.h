/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * output.h — one printer for the CLI's text tables and JSON (style.md #20,
 * after iproute2's print_uint(PRINT_ANY, "key", "fmt", v)).
 *
 * A caller describes each row once, field by field; the printer renders it
 * either as an aligned text row (columns declared up front, with an
 * `ss`-like header unless suppressed), as one JSON object inside a single
 * top-level array, or as one JSON object per line (a stream such as
 * `connbeat events --json`). Rows are written as they come, so output of
 * any length streams in constant memory. Numbers stay numbers in JSON; text cells may
 * differ from the JSON value (a human duration in the table, milliseconds in
 * JSON).
 */
#ifndef CONNBEAT_OUTPUT_H
#define CONNBEAT_OUTPUT_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

enum cb_out_mode {
	CB_OUT_TEXT,
	CB_OUT_JSON,
	CB_OUT_JSON_LINES, /* one JSON object per line, no array: a stream */
};

enum cb_col_align {
	CB_COL_LEFT,
	CB_COL_RIGHT,
};

struct cb_col {
	const char *header;
	int width; /* minimum text width; 0 = as wide as the value */
	enum cb_col_align align;
};

/* JSON is built in this buffer and written in blocks of about its size. */
#define CB_OUT_JSON_BUF 65536

struct cb_out {
	FILE *f;
	enum cb_out_mode mode;
	const struct cb_col *cols;
	int ncols;
	bool header;
	/* state */
	int col;        /* next text column */
	bool first_row; /* JSON: no comma before the first object */
	bool first_field;
	uint64_t rows;
	size_t jlen;                 /* JSON bytes waiting in jbuf */
	char jbuf[CB_OUT_JSON_BUF];
};

/* Start a table or a JSON array. `header` prints the column headers (text). */
void cb_out_begin(struct cb_out *o, FILE *f, enum cb_out_mode mode, const struct cb_col *cols,
		  int ncols, bool header);
void cb_out_row_begin(struct cb_out *o);
/* A string field: `key` in JSON, `text` (or `value` when NULL) in the table.
 * Either key or text may be NULL to print only in one mode. */
void cb_out_str(struct cb_out *o, const char *key, const char *value, const char *text);
/* An unsigned number: a JSON number, `text` (or the decimal value) in the table. */
void cb_out_u64(struct cb_out *o, const char *key, uint64_t value, const char *text);
/* A JSON-only field (not a table column). */
void cb_out_json_u64(struct cb_out *o, const char *key, uint64_t value);
void cb_out_json_str(struct cb_out *o, const char *key, const char *value);
void cb_out_json_null(struct cb_out *o, const char *key);
void cb_out_json_bool(struct cb_out *o, const char *key, bool value);
void cb_out_row_end(struct cb_out *o);
/* Write out every row so far (a stream, between two batches of rows). */
void cb_out_flush(struct cb_out *o);
/* Close the JSON array (prints "[]" when there were no rows). */
void cb_out_end(struct cb_out *o);

/* Write `s` as a JSON string literal, escaped. */
void cb_json_string(FILE *f, const char *s);

#endif /* CONNBEAT_OUTPUT_H */
