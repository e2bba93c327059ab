/* The word splitter: one option line (of a .ovpn file, or one comma-separated piece of a
 * PUSH_REPLY) into words, exactly as OpenVPN 2.6 cuts them (options.c parse_line).
 *
 * What it guarantees:
 * - Words are separated by white space; "double quotes" allow the escapes \\, \" and "\ ",
 *   'single quotes' none; outside single quotes a backslash may only precede \, " or a space, and
 *   anything else after one is refused with a reason rather than guessed at.
 * - A word starting with # or ; starts a comment: the rest of the line is not read.
 * - Each word is written over the text it came from and the write position never passes the read
 *   position, so no memory is allocated and the caller's buffer bounds everything.
 * - At most max words: a longer line is refused, as OpenVPN refuses more than MAX_PARMS. */
#include "tunnel/openvpn/words.h"

#include <errno.h>

int ovpn_is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

int ovpn_base64_digit(int c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '+')
        return 62;
    if (c == '/')
        return 63;
    return -1;
}

/* The splitter behind ovpn_split_words, with a reason for the failures. It writes each word over
 * the text it came from: the write position never passes the read position. */
int ovpn_split_words_why(char *buf, char **words, int max, const char **why)
{
    enum { SPLIT_BETWEEN, SPLIT_PLAIN, SPLIT_DQUOTE, SPLIT_SQUOTE } state = SPLIT_BETWEEN;
    const char *in = buf;
    char *out = buf;
    int n = 0;
    int backslash = 0;

    for (;; in++) {
        char c = *in;
        char emit = 0;
        int has_emit = 0, word_end = 0;

        if (!backslash && c == '\\' && state != SPLIT_SQUOTE) {
            backslash = 1;
            continue;
        }
        switch (state) {
        case SPLIT_BETWEEN:
            if (c == '\0' || ovpn_is_space(c))
                break;
            if (c == '#' || c == ';')
                goto done; /* a comment, even right after a backslash (as OpenVPN) */
            if (n == max) {
                *why = "too many words on one line";
                return -EINVAL;
            }
            words[n] = out;
            if (!backslash && c == '"') {
                state = SPLIT_DQUOTE;
            } else if (!backslash && c == '\'') {
                state = SPLIT_SQUOTE;
            } else {
                emit = c;
                has_emit = 1;
                state = SPLIT_PLAIN;
            }
            break;
        case SPLIT_PLAIN:
            if (c == '\0' && backslash) {
                *why = "a backslash at the end of the line";
                return -EINVAL;
            }
            if (!backslash && (c == '\0' || ovpn_is_space(c))) {
                word_end = 1;
            } else {
                emit = c;
                has_emit = 1;
            }
            break;
        case SPLIT_DQUOTE:
            if (c == '\0') {
                *why = "no closing quotation mark (\")";
                return -EINVAL;
            }
            if (!backslash && c == '"') {
                word_end = 1;
            } else {
                emit = c;
                has_emit = 1;
            }
            break;
        case SPLIT_SQUOTE:
            if (c == '\0') {
                *why = "no closing quotation mark (')";
                return -EINVAL;
            }
            if (c == '\'') {
                word_end = 1;
            } else {
                emit = c;
                has_emit = 1;
            }
            break;
        }
        if (backslash && has_emit && !(emit == '\\' || emit == '"' || ovpn_is_space(emit))) {
            *why = "a backslash before something other than \\, \" or a space (write \\\\ for one)";
            return -EINVAL;
        }
        backslash = 0;
        if (has_emit)
            *out++ = emit;
        if (word_end) {
            *out++ = '\0';
            n++;
            state = SPLIT_BETWEEN;
        }
        if (c == '\0')
            break;
    }
done:
    /* A comment may end the line while a word is open only between words, so nothing is open. */
    return n;
}

int ovpn_split_words(char *buf, char **words, int max)
{
    const char *why;
    return ovpn_split_words_why(buf, words, max, &why);
}
