/* The config file. inih (Debian's libinih) splits the lines into names and values, handles
 * comments (`#` or `;` starting a line, `;` after a space ending one), `name: value`, a UTF-8 BOM
 * and CRLF line ends; each pair then goes through options_apply_setting(), the command line's own
 * code, as "--name value".
 *
 * What inih leaves to its caller, and the choices made here:
 *   - line numbers: the handler is not told the line (Debian builds inih without
 *     INI_HANDLER_LINENO), so the lines are fed through our reader, which counts them;
 *   - an indented line would continue the previous value (INI_ALLOW_MULTILINE, Python's
 *     configparser style), which makes "  socks = 1080" under "config = x" part of config's path.
 *     The reader drops leading blanks, so every line stands alone and indenting is harmless;
 *   - inih cuts a line longer than its buffer (200 bytes as Debian builds it) into pieces that it
 *     parses as lines of their own; the reader refuses such a line instead;
 *   - sections: a `[section]` line would silently put the options after it in a section; there
 *     are none, so the line is refused;
 *   - a name with no `=` (a bare flag) is an error in inih as Debian builds it (INI_ALLOW_NO_VALUE
 *     is off), so a flag is written `name = yes`.
 * Debian's build exports run-time switches for some of these (ini_allow_multiline, ...), but
 * upstream inih has none, so they are not used.
 *
 * The file is read whole (it is small) and checked before anything in it is used: see conf_load. */
#include "app/conf.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <ini.h>

#include "app/options.h"

enum { CONF_MAX_SIZE = 1024 * 1024 };

struct conf_parse {
    struct options *o;
    const char *dir;
    const char *p, *end; /* what the reader has not handed to inih yet */
    unsigned line;       /* the line inih is working on */
    unsigned err_line;   /* the first line found wrong here, 0 while none */
    char msg[512];
};

static void conf_fail(struct conf_parse *cp, const char *msg)
{
    cp->err_line = cp->line;
    snprintf(cp->msg, sizeof(cp->msg), "%s", msg);
}

/* inih's fgets: one line into buf (num bytes), or NULL at the end or at a line refused here. */
static char *conf_read_line(char *buf, int num, void *arg)
{
    struct conf_parse *cp = arg;
    if (cp->p >= cp->end || cp->err_line)
        return NULL;
    const char *s = cp->p, *nl = memchr(s, '\n', (size_t)(cp->end - s));
    size_t n = nl ? (size_t)(nl - s) + 1 : (size_t)(cp->end - s);
    cp->p += n;
    cp->line++;
    while (n > 0 && (*s == ' ' || *s == '\t')) {
        s++;
        n--;
    }
    size_t text = n; /* without the line end */
    if (text > 0 && s[text - 1] == '\n')
        text--;
    if (text > 0 && s[text - 1] == '\r')
        text--;
    char msg[64];
    if (memchr(s, '\0', n))
        conf_fail(cp, "a NUL byte: not a text file");
    else if (n > 0 && *s == '[') /* n is 0 for blanks that end the text: nothing to read */
        conf_fail(cp, "sections are not used: every option goes on a `name = value` line of its own");
    else if (text + 3 > (size_t)num) { /* inih's buffer holds the line, a \r, a \n and the NUL */
        snprintf(msg, sizeof(msg), "line too long (at most %d characters)", num - 3);
        conf_fail(cp, msg);
    }
    if (cp->err_line)
        return NULL;
    memcpy(buf, s, n);
    buf[n] = '\0';
    return buf;
}

static int conf_setting(void *arg, const char *section, const char *name, const char *value)
{
    struct conf_parse *cp = arg;
    (void)section; /* always "": the reader refuses section lines */
    if (cp->err_line)
        return 1; /* the first error is the one reported; inih carries on regardless */
    char msg[sizeof(cp->msg)];
    if (options_apply_setting(cp->o, name, value ? value : "", cp->line, cp->dir, msg, sizeof(msg)) < 0) {
        /* `socks = 1080  # the proxy` is how many INI files comment a line, and inih (as Debian
         * builds it) keeps the `#` and what follows in the value: say so, or the user stares at
         * a value that looks right. */
        const char *hash = value ? strchr(value, '#') : NULL;
        if (hash && hash > value && (hash[-1] == ' ' || hash[-1] == '\t')) {
            size_t n = strlen(msg);
            snprintf(msg + n, sizeof(msg) - n, " (a `#` after a value is part of it: a comment goes on a line of "
                                               "its own, or after ` ;`)");
        }
        conf_fail(cp, msg);
        return 0;
    }
    return 1;
}

int conf_parse_text(struct options *o, const char *text, size_t len, const char *name, const char *dir, char *err,
                    size_t errcap)
{
    struct conf_parse cp = {.o = o, .dir = dir, .p = text, .end = text + len};
    int rc = ini_parse_stream(conf_read_line, &cp, conf_setting, &cp);
    /* inih's own errors (a line without '=' or ':') and ours: the first line wins. */
    if (cp.err_line && (rc <= 0 || cp.err_line <= (unsigned)rc)) {
        snprintf(err, errcap, "%s:%u: %s", name, cp.err_line, cp.msg);
        return -EINVAL;
    }
    if (rc > 0) {
        snprintf(err, errcap, "%s:%d: expected `name = value` (a flag too: `name = yes`)", name, rc);
        return -EINVAL;
    }
    if (rc < 0) {
        snprintf(err, errcap, "%s: out of memory", name);
        return -ENOMEM;
    }
    return 0;
}

/* The file's directory, for relative paths in it; NULL when it has none ("vpn.conf"). */
static char *conf_dir(const char *path)
{
    const char *slash = strrchr(path, '/');
    if (!slash)
        return NULL;
    if (slash == path)
        return strdup("/");
    return strndup(path, (size_t)(slash - path));
}

/* Reads the file whole, after checking who may change it. 0 or a negative errno, with err set. */
static int conf_read(const char *path, char **text, size_t *len, char *err, size_t errcap)
{
    /* O_NONBLOCK: opening a FIFO for reading waits for a writer, and a reload runs on the loop,
     * so a FIFO in the file's place (or given at start) held every connection and the stop until
     * something wrote to it. With it the open returns and the check below refuses the FIFO; reads
     * of a regular file take no notice of the flag. */
    int rc = 0, fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
    char *buf = NULL;
    struct stat st;
    if (fd < 0 || fstat(fd, &st) < 0) {
        rc = -errno;
        snprintf(err, errcap, "%s: %s", path, strerror(errno));
        goto out;
    }
    if (!S_ISREG(st.st_mode)) {
        rc = -EINVAL;
        snprintf(err, errcap, "%s: not a regular file", path);
        goto out;
    }
    /* Like ssh with its config: refused, not warned about. A readable secret leaks (so
     * --allow-readable-secrets can accept one with a warning), but this file says which
     * server to trust, where connections go and who may use the listeners, and a reload
     * applies it: whoever can write it can take the tunnel over. */
    if (st.st_uid != 0 && st.st_uid != geteuid()) {
        rc = -EPERM;
        snprintf(err, errcap, "%s: owned by uid %u, neither root nor the user running vpn2socks (uid %u): refused",
                 path, (unsigned)st.st_uid, (unsigned)geteuid());
        goto out;
    }
    if (st.st_mode & (S_IWGRP | S_IWOTH)) {
        rc = -EPERM;
        snprintf(err, errcap, "%s: other users may write it (mode %04o), so it is refused: chmod go-w %s", path,
                 (unsigned)(st.st_mode & 07777), path);
        goto out;
    }
    if (st.st_size > CONF_MAX_SIZE) {
        rc = -EFBIG;
        snprintf(err, errcap, "%s: larger than %d bytes: not a config file", path, CONF_MAX_SIZE);
        goto out;
    }
    if (!(buf = malloc((size_t)st.st_size + 1))) {
        rc = -ENOMEM;
        snprintf(err, errcap, "%s: out of memory", path);
        goto out;
    }
    size_t got = 0;
    while (got < (size_t)st.st_size) {
        ssize_t n = read(fd, buf + got, (size_t)st.st_size - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            rc = -errno;
            snprintf(err, errcap, "%s: %s", path, strerror(errno));
            goto out;
        }
        if (n == 0)
            break; /* it shrank since fstat: what was read is the file */
        got += (size_t)n;
    }
    buf[got] = '\0';
    *text = buf;
    *len = got;
    buf = NULL;
out:
    free(buf);
    if (fd >= 0)
        close(fd);
    return rc;
}

int conf_load(struct options *o, const char *path, char *err, size_t errcap)
{
    char *text = NULL, *dir = NULL;
    size_t len = 0;
    int rc = conf_read(path, &text, &len, err, errcap);
    if (rc < 0)
        return rc;
    dir = conf_dir(path);
    if (strrchr(path, '/') && !dir) {
        snprintf(err, errcap, "%s: out of memory", path);
        rc = -ENOMEM;
    } else
        rc = conf_parse_text(o, text, len, path, dir, err, errcap);
    free(dir);
    free(text);
    return rc;
}

int conf_options(struct options *o, int argc, char **argv, char *err, size_t errcap)
{
    int rc = options_apply_args(o, argc, argv, err, errcap);
    if (rc < 0 || o->help || o->version)
        return rc;
    if (o->conf) {
        /* Start over: the file first, then the command line once more, over it. */
        char *path = o->conf;
        o->conf = NULL;
        options_free(o);
        options_init(o);
        rc = conf_load(o, path, err, errcap);
        if (rc < 0)
            options_name_file(err, errcap, "--conf", path);
        if (rc == 0)
            rc = options_apply_args(o, argc, argv, err, errcap);
        free(path);
        if (rc < 0)
            return rc;
    }
    return options_check(o, err, errcap);
}
