/* The framing of a .ovpn file: bytes into lines, lines into options, inline blocks and
 * <connection> blocks (OpenVPN 2.6 options.c read_config_file, read_inline_file, and the
 * <connection> handling of add_option).
 *
 * What it guarantees:
 * - Text may arrive in any split: a line is completed across feeds, at most CONFIG_MAX_LINE bytes
 *   (OpenVPN stops at 256; PEM and base64 lines are shorter than ours). A NUL byte is refused
 *   (not a text file). A CR before the LF is dropped, and a UTF-8 byte order mark at the start of
 *   the file is skipped. A leading "--" on the option name is dropped.
 * - A line that is one word "<tag>" opens an inline block that runs to the first line whose text,
 *   after leading whitespace, starts with "</tag>"; the block's text (at most CONFIG_MAX_BLOCK
 *   bytes) is the option's argument. A block for an option that is ignored or only warned about is
 *   read and dropped.
 * - <connection> blocks hold one remote each and the options allowed per connection (the table's
 *   CONFIG_CONN rows); they start from the proto and port set above them and cannot nest.
 * - Every line and block buffer is wiped once used: key blocks pass through them. */
#include "tunnel/openvpn/config_internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/errmsg.h"

/* Whether line, after leading whitespace, starts with "</tag>". */
static int config_is_close_tag(const char *line, const char *tag)
{
    size_t tl = strlen(tag);
    while (ovpn_is_space(*line))
        line++;
    return line[0] == '<' && line[1] == '/' && strncmp(line + 2, tag, tl) == 0 && line[2 + tl] == '>';
}

static int config_connection_begin(struct ovpn_config_parser *p)
{
    if (p->in_connection)
        return config_fail(p, "<connection> blocks cannot nest");
    p->in_connection = 1;
    p->conn_line = p->line_no;
    p->conn_ce = p->ce;
    p->conn_has_remote = 0;
    return 0;
}

static int config_connection_end(struct ovpn_config_parser *p)
{
    struct config_remote *r = &p->conn_remote;
    p->in_connection = 0;
    if (!p->conn_has_remote)
        return ovpn_config_fail_at(p, p->conn_line, "a <connection> block needs a remote");
    if (!r->port_given) {
        memcpy(r->r.port, p->conn_ce.port, sizeof(r->r.port));
        r->port_line = p->conn_ce.port_line;
    }
    if (!r->proto_given) {
        r->r.proto = p->conn_ce.proto;
        r->r.family = p->conn_ce.family;
    }
    r->port_given = r->proto_given = 1; /* settled: the file's own defaults no longer apply */
    p->has_connections = 1;
    p->opt_line = r->line;
    return ovpn_config_append_remote(p, r);
}

static int config_block_begin(struct ovpn_config_parser *p, const char *tag)
{
    char shown[CONFIG_SHOWN_MAX];
    const struct config_option *o;
    int rc;

    if (tag[0] == '/')
        return config_fail(p, "<%s> closes a block that was never opened", v2s_shown(tag, shown, sizeof(shown)));
    if (strlen(tag) >= sizeof(p->block_tag))
        return config_fail(p, "unknown option '%s'", v2s_shown(tag, shown, sizeof(shown)));
    if (strcmp(tag, "connection") == 0)
        return config_connection_begin(p);
    o = ovpn_config_find(tag);
    if (o == NULL) {
        if ((rc = ovpn_config_unknown(p, tag, 0)) < 0)
            return rc;
    } else if (o->kind == CONFIG_APPLY) {
        if (!(o->flags & CONFIG_BLOCK))
            return config_fail(p, "%s cannot be an inline <%s> block", o->name, o->name);
        if (p->in_connection && !(o->flags & CONFIG_CONN))
            return config_fail(p, "%s cannot be used inside a <connection> block", o->name);
    } else if (ovpn_config_not_applied(p, o, &rc)) {
        if (rc < 0)
            return rc;
        o = NULL; /* read the block and drop it */
    }
    snprintf(p->block_tag, sizeof(p->block_tag), "%s", tag);
    p->block_opt = o;
    p->block_line = p->line_no;
    p->block_len = 0;
    return 0;
}

static int config_block_line(struct ovpn_config_parser *p, const char *line, size_t len)
{
    if (config_is_close_tag(line, p->block_tag)) {
        const struct config_option *o = p->block_opt;
        char *w[1] = {p->block_tag};
        int rc = 0;
        if (o != NULL) {
            p->opt_line = p->block_line;
            rc = o->apply(p, w, 1, p->block_len ? p->block : "");
        }
        if (p->block != NULL)
            explicit_bzero(p->block, p->block_len);
        p->block_len = 0;
        p->block_tag[0] = '\0';
        p->block_opt = NULL;
        return rc;
    }
    if (p->block_opt == NULL)
        return 0;
    if (p->block_len + len + 2 > CONFIG_MAX_BLOCK)
        return ovpn_config_fail_at(p, p->block_line, "the <%s> block is larger than %d bytes", p->block_tag,
                                   CONFIG_MAX_BLOCK);
    if (p->block_len + len + 2 > p->block_cap) {
        size_t cap = p->block_cap ? p->block_cap : 4096;
        while (cap < p->block_len + len + 2)
            cap *= 2;
        char *grown = malloc(cap);
        if (grown == NULL)
            return ovpn_config_nomem(p);
        if (p->block != NULL) {
            memcpy(grown, p->block, p->block_len);
            explicit_bzero(p->block, p->block_cap); /* keys pass through here */
            free(p->block);
        }
        p->block = grown;
        p->block_cap = cap;
    }
    memcpy(p->block + p->block_len, line, len);
    p->block_len += len;
    p->block[p->block_len++] = '\n';
    p->block[p->block_len] = '\0';
    return 0;
}

/* One complete line, without its LF, NUL-terminated in place. */
int ovpn_config_line(struct ovpn_config_parser *p, char *line, size_t len)
{
    char *words[CONFIG_MAX_WORDS];
    const char *why;
    int n;

    p->line_no++;
    p->opt_line = p->line_no;
    if (len > 0 && line[len - 1] == '\r')
        line[--len] = '\0';
    if (p->line_no == 1 && len >= 3 && memcmp(line, "\xEF\xBB\xBF", 3) == 0) {
        line += 3;
        len -= 3;
    }
    if (p->block_tag[0] != '\0')
        return config_block_line(p, line, len);
    if (p->in_connection && config_is_close_tag(line, "connection"))
        return config_connection_end(p);

    if ((n = ovpn_split_words_why(line, words, CONFIG_MAX_WORDS, &why)) < 0)
        return config_fail(p, "%s", why);
    if (n == 0)
        return 0;
    if (strlen(words[0]) >= 3 && strncmp(words[0], "--", 2) == 0)
        words[0] += 2;
    size_t wl = strlen(words[0]);
    if (n == 1 && wl >= 3 && words[0][0] == '<' && words[0][wl - 1] == '>') {
        words[0][wl - 1] = '\0';
        return config_block_begin(p, words[0] + 1);
    }
    return ovpn_config_option(p, words, n);
}

int ovpn_config_parser_feed(struct ovpn_config_parser *p, const char *text, size_t len, char *err,
                            size_t errcap)
{
    int rc = 0;
    if (p->error == 0 && p->finished)
        ovpn_config_fail_at(p, 0, "text fed after the end of the file");
    while (p->error == 0 && len > 0) {
        const char *nl = memchr(text, '\n', len);
        size_t take = nl ? (size_t)(nl - text) : len;
        if (memchr(text, '\0', take) != NULL) {
            ovpn_config_fail_at(p, p->line_no + 1, "a NUL byte: this is not a text file");
            break;
        }
        if (p->line_len + take > CONFIG_MAX_LINE) {
            ovpn_config_fail_at(p, p->line_no + 1, "line longer than %d bytes", CONFIG_MAX_LINE);
            break;
        }
        memcpy(p->line + p->line_len, text, take);
        p->line_len += take;
        if (nl == NULL)
            break;
        p->line[p->line_len] = '\0';
        rc = ovpn_config_line(p, p->line, p->line_len);
        explicit_bzero(p->line, p->line_len); /* a line of a key block is a secret */
        p->line_len = 0;
        if (rc < 0)
            break;
        text += take + 1;
        len -= take + 1;
    }
    if (p->error != 0)
        v2s_fail(err, errcap, "%s", p->err);
    return p->error;
}
