// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* output.c — see output.h. */
#include "cli/output.h"

#include <inttypes.h>
#include <string.h>

/*
 * The JSON path writes a million rows in well under a second: characters go
 * out with the unlocked stdio calls (the CLI is single-threaded), numbers
 * are formatted by hand instead of through printf, and runs of plain
 * characters in a string are written with one call.
 */
static void put_u64(FILE *f, uint64_t v)
{
	char buf[20];
	int i = sizeof(buf);

	do {
		buf[--i] = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	fwrite_unlocked(buf + i, 1, sizeof(buf) - i, f);
}

static void put_str(FILE *f, const char *s)
{
	fwrite_unlocked(s, 1, strlen(s), f);
}

void cb_json_string(FILE *f, const char *s)
{
	static const char hex[] = "0123456789abcdef";
	const unsigned char *p = (const unsigned char *)s, *run = p;

	putc_unlocked('"', f);
	for (; *p; p++) {
		const char *esc = NULL;
		char u[6];

		switch (*p) {
		case '"': esc = "\\\""; break;
		case '\\': esc = "\\\\"; break;
		case '\n': esc = "\\n"; break;
		case '\t': esc = "\\t"; break;
		case '\r': esc = "\\r"; break;
		default:
			/* process names are arbitrary bytes: control characters
			 * and non-ASCII bytes are escaped so the output is always
			 * valid JSON (bytes >= 0x80 as U+0080..U+00FF) */
			if (*p >= 0x20 && *p < 0x7f)
				continue;
		}
		fwrite_unlocked(run, 1, p - run, f);
		run = p + 1;
		if (esc) {
			put_str(f, esc);
			continue;
		}
		memcpy(u, "\\u00", 4);
		u[4] = hex[*p >> 4];
		u[5] = hex[*p & 15];
		fwrite_unlocked(u, 1, sizeof(u), f);
	}
	fwrite_unlocked(run, 1, p - run, f);
	putc_unlocked('"', f);
}

void cb_out_begin(struct cb_out *o, FILE *f, enum cb_out_mode mode, const struct cb_col *cols,
		  int ncols, bool header)
{
	memset(o, 0, sizeof(*o));
	o->f = f;
	o->mode = mode;
	o->cols = cols;
	o->ncols = ncols;
	o->header = header;
	o->first_row = true;
	if (mode == CB_OUT_JSON) {
		fputc('[', f);
		return;
	}
	if (!header)
		return;
	for (int i = 0; i < ncols; i++) {
		int w = cols[i].width;

		if (i == ncols - 1 && cols[i].align == CB_COL_LEFT)
			fprintf(f, "%s", cols[i].header);
		else if (cols[i].align == CB_COL_RIGHT)
			fprintf(f, "%*s", w, cols[i].header);
		else
			fprintf(f, "%-*s", w, cols[i].header);
		if (i < ncols - 1)
			fputc(' ', f);
	}
	fputc('\n', f);
}

void cb_out_row_begin(struct cb_out *o)
{
	o->col = 0;
	o->first_field = true;
	if (o->mode == CB_OUT_JSON) {
		put_str(o->f, o->first_row ? "\n{" : ",\n{");
		o->first_row = false;
	}
}

/* Keys are our own identifiers: nothing to escape. */
static void json_key(struct cb_out *o, const char *key)
{
	if (!o->first_field)
		putc_unlocked(',', o->f);
	o->first_field = false;
	putc_unlocked('"', o->f);
	put_str(o->f, key);
	fwrite_unlocked("\":", 1, 2, o->f);
}

static void text_cell(struct cb_out *o, const char *text)
{
	const struct cb_col *c;

	if (o->col >= o->ncols)
		return;
	c = &o->cols[o->col];
	if (o->col == o->ncols - 1 && c->align == CB_COL_LEFT)
		fputs(text, o->f); /* no trailing blanks on the last column */
	else if (c->align == CB_COL_RIGHT)
		fprintf(o->f, "%*s", c->width, text);
	else
		fprintf(o->f, "%-*s", c->width, text);
	if (o->col < o->ncols - 1)
		fputc(' ', o->f);
	o->col++;
}

void cb_out_str(struct cb_out *o, const char *key, const char *value, const char *text)
{
	if (o->mode == CB_OUT_JSON) {
		if (!key)
			return;
		json_key(o, key);
		cb_json_string(o->f, value);
	} else if (text || value) {
		text_cell(o, text ? text : value);
	}
}

void cb_out_u64(struct cb_out *o, const char *key, uint64_t value, const char *text)
{
	char buf[24];

	if (o->mode == CB_OUT_JSON) {
		if (!key)
			return;
		json_key(o, key);
		put_u64(o->f, value);
		return;
	}
	if (!text) {
		snprintf(buf, sizeof(buf), "%" PRIu64, value);
		text = buf;
	}
	text_cell(o, text);
}

void cb_out_json_u64(struct cb_out *o, const char *key, uint64_t value)
{
	if (o->mode != CB_OUT_JSON)
		return;
	json_key(o, key);
	put_u64(o->f, value);
}

void cb_out_json_str(struct cb_out *o, const char *key, const char *value)
{
	if (o->mode != CB_OUT_JSON)
		return;
	json_key(o, key);
	cb_json_string(o->f, value);
}

void cb_out_json_null(struct cb_out *o, const char *key)
{
	if (o->mode != CB_OUT_JSON)
		return;
	json_key(o, key);
	put_str(o->f, "null");
}

void cb_out_json_bool(struct cb_out *o, const char *key, bool value)
{
	if (o->mode != CB_OUT_JSON)
		return;
	json_key(o, key);
	put_str(o->f, value ? "true" : "false");
}

void cb_out_row_end(struct cb_out *o)
{
	o->rows++;
	putc_unlocked(o->mode == CB_OUT_JSON ? '}' : '\n', o->f);
}

void cb_out_end(struct cb_out *o)
{
	if (o->mode == CB_OUT_JSON)
		fputs(o->first_row ? "]\n" : "\n]\n", o->f);
	fflush(o->f);
}
