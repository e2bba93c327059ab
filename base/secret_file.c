/* Secret files: reading them whole, wiping what held them, and the permission rule.
 *
 * The rule is ssh's for private keys, with PostgreSQL's allowance for root: other users may
 * neither read nor write the file, and its group may read it only when root owns it (root:GROUP
 * 0640, how Debian hands keys to a service through a group such as ssl-cert), never write it. Only
 * regular files are checked: a pipe such as <(...) belongs to the process alone. The mode checked
 * is the one fstat() gives for the descriptor read, so the file cannot be swapped in between. */
#include "base/secret_file.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/addr.h"
#include "base/errmsg.h"
#include "base/log.h"

int v2s_file_read(const char *path, size_t max, char **out, size_t *out_len, struct stat *st)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    size_t len = 0, cap = 4096;
    char *buf = NULL;
    int rc = 0;

    *out = NULL;
    if (fd < 0)
        return -errno;
    if (fstat(fd, st) < 0) {
        rc = -errno;
        goto out;
    }
    if ((buf = malloc(cap + 1)) == NULL) {
        rc = -ENOMEM;
        goto out;
    }
    for (;;) {
        if (len == cap) {
            if (cap >= max + 1) {
                rc = -EFBIG;
                goto out;
            }
            /* Grown by copying, not realloc(), so that no unwiped copy of a secret is left behind. */
            size_t ncap = cap * 2 > max + 1 ? max + 1 : cap * 2;
            char *grown = malloc(ncap + 1);
            if (grown == NULL) {
                rc = -ENOMEM;
                goto out;
            }
            memcpy(grown, buf, len);
            explicit_bzero(buf, cap + 1);
            free(buf);
            buf = grown;
            cap = ncap;
        }
        ssize_t got = read(fd, buf + len, cap - len);
        if (got < 0 && errno == EINTR)
            continue;
        if (got < 0) {
            rc = -errno;
            goto out;
        }
        if (got == 0)
            break;
        len += (size_t)got;
    }
    if (len > max) {
        rc = -EFBIG;
        goto out;
    }
    buf[len] = '\0';
    *out = buf;
    *out_len = len;
    buf = NULL;
out:
    if (buf != NULL) {
        explicit_bzero(buf, cap + 1);
        free(buf);
    }
    close(fd);
    return rc;
}

void v2s_file_free(char *text, size_t len)
{
    if (text != NULL) {
        explicit_bzero(text, len);
        free(text);
    }
}

/* What other users can do with the file, or NULL when it is closed to them. */
static const char *secret_exposure(const struct stat *st)
{
    if (!S_ISREG(st->st_mode))
        return NULL;
    if (st->st_mode & S_IROTH)
        return "other users can read";
    if (st->st_mode & S_IWOTH)
        return "other users can write";
    if (st->st_mode & S_IWGRP)
        return "its group can write";
    if ((st->st_mode & S_IRGRP) && st->st_uid != 0)
        return "its group can read";
    return NULL;
}

int v2s_secret_check(const char *path, const struct stat *st, const char *what, int allow_readable, char *err,
                     size_t errcap)
{
    const char *exposure = secret_exposure(st);
    char shown[256];
    if (exposure == NULL)
        return 0;
    v2s_shown(path, shown, sizeof(shown));
    if (allow_readable) {
        v2s_warn("%s holds %s that %s (mode %04o); used anyway (--allow-readable-secrets)", shown, what, exposure,
                 (unsigned)(st->st_mode & 07777));
        return 0;
    }
    v2s_fail(err, errcap, "%s holds %s that %s (mode %04o): run chmod 600 %s, or give --allow-readable-secrets",
             shown, what, exposure, (unsigned)(st->st_mode & 07777), shown);
    return -EPERM;
}
