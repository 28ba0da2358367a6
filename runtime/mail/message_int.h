/*
 * message_int.h - helpers shared by message.c (GMime's full parse) and
 * message_fast.c (the header-block scanner), so both read a header value
 * the same way.  Private to the message module: GMime types may appear.
 */
#ifndef MS_MESSAGE_INT_H
#define MS_MESSAGE_INT_H

#include <gmime/gmime.h>
#include <stddef.h>

/* Copy of s[0..len) with a NUL.  Caller frees. */
char *msg_dup_len(const char *s, size_t len);
/* A decoded header value as one clean UTF-8 line: invalid UTF-8 read as
 * windows-1252, CR/LF/TAB made blanks.  "" for NULL.  Caller frees. */
char *msg_header_text(const char *s);
/* An address trimmed, its domain lowercased.  Caller frees. */
char *msg_address_lower_domain(const char *addr);
/* The first mailbox of a list, looking into groups (bounded depth). */
InternetAddressMailbox *msg_first_mailbox(InternetAddressList *l, int depth);
/* Length of the header block: up to and including the line end before the
 * first empty line, or len if there is none. */
size_t msg_header_block_len(const char *data, size_t len);

#endif
